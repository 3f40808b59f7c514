#!/usr/bin/python3
"""Golden vectors for trainer/eval's KNN: DINO's knn_classifier in torch.

Run with /usr/bin/python3 (torch 1.13) from this folder:

    /usr/bin/python3 gen_knn.py > knn_golden.json

knn_classifier below follows facebookresearch/dino eval_knn.py (features
normalised with F.normalize as DINO's main does before calling it; the
chunk loop, topk, one-hot scatter, exp(sim/T) weights, sort and top-1 /
top-min(5, k) counting as there). It additionally returns every test
sample's class votes, predicted class and top-5 hit so the Go test can
compare sample by sample.

Ties are where DINO's result is undefined (torch's topk and CPU sort do not
order equal values), so the script refuses data whose neighbour ranking has
a near-tie at any k boundary, and it marks the samples whose class ranking
could flip on a tie ("ambiguous") so the test does not compare them.
"""
import json

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_classifier(train_features, train_labels, test_features, test_labels, k, T, num_classes):
    train_features = F.normalize(train_features, dim=1, p=2)
    test_features = F.normalize(test_features, dim=1, p=2)
    top1, top5, total = 0.0, 0.0, 0
    train_features = train_features.t()
    num_test_images, num_chunks = test_labels.shape[0], 7
    imgs_per_chunk = max(1, num_test_images // num_chunks)
    retrieval_one_hot = torch.zeros(k, num_classes)
    all_probs, all_pred, all_hit5 = [], [], []
    for idx in range(0, num_test_images, imgs_per_chunk):
        features = test_features[idx: min((idx + imgs_per_chunk), num_test_images), :]
        targets = test_labels[idx: min((idx + imgs_per_chunk), num_test_images)]
        batch_size = targets.shape[0]

        similarity = torch.mm(features, train_features)
        distances, indices = similarity.topk(k, largest=True, sorted=True)
        candidates = train_labels.view(1, -1).expand(batch_size, -1)
        retrieved_neighbors = torch.gather(candidates, 1, indices)

        retrieval_one_hot.resize_(batch_size * k, num_classes).zero_()
        retrieval_one_hot.scatter_(1, retrieved_neighbors.view(-1, 1), 1)
        distances_transform = distances.clone().div_(T).exp_()
        probs = torch.sum(
            torch.mul(
                retrieval_one_hot.view(batch_size, -1, num_classes),
                distances_transform.view(batch_size, -1, 1),
            ),
            1,
        )
        _, predictions = probs.sort(1, True)

        correct = predictions.eq(targets.data.view(-1, 1))
        top1 = top1 + correct.narrow(1, 0, 1).sum().item()
        if num_classes >= 5:
            top5 = top5 + correct.narrow(1, 0, min(5, k)).sum().item()
            all_hit5 += correct.narrow(1, 0, min(5, k)).sum(1).tolist()
        total += targets.size(0)
        all_probs.append(probs)
        all_pred += predictions[:, 0].tolist()
    top1 = top1 * 100.0 / total
    top5 = top5 * 100.0 / total
    return top1, top5, torch.cat(all_probs), all_pred, all_hit5


def f32(a):
    """float32 values as their shortest decimal form (what numpy prints),
    which parses back to the same float32."""
    return [float(repr(v)) for v in np.asarray(a, dtype=np.float32).ravel()]


def neighbour_margins_ok(train, test, ks, tol=1e-6):
    """False where a k-th and (k+1)-th neighbour are nearly tied (float32
    rounding could swap them; float32 similarities carry ~1e-7 error)."""
    sim = F.normalize(test, dim=1) @ F.normalize(train, dim=1).t()
    s, _ = sim.sort(1, descending=True)
    for k in ks:
        if k < s.shape[1]:
            gap = (s[:, k - 1] - s[:, k]).min().item()
            if gap <= tol:
                return False
    return True


def ambiguous(probs, targets, k, tol=1e-4):
    """Samples whose top-1 or top-min(5, k) outcome depends on how ties are
    ordered: the positions the target can take among classes of (nearly)
    equal vote straddle position 1 or min(5, k)."""
    out = []
    n5 = min(5, k)
    for p, t in zip(probs.tolist(), targets.tolist()):
        pt = p[t]
        eps = tol * max(1.0, abs(pt))
        lo = sum(1 for v in p if v > pt + eps)  # best position the target can take
        hi = sum(1 for v in p if v >= pt - eps) - 1  # worst position
        out.append(any(lo < b <= hi for b in (1, n5)))
    return out


def case(name, rng, classes, dim, n_train, n_test, ks, T, spread, scale_range):
    """Draws clustered data until no k boundary is nearly tied, then runs
    knn_classifier for every k."""
    while True:
        c = draw(name, rng, classes, dim, n_train, n_test, ks, T, spread, scale_range)
        if c is not None:
            return c


def draw(name, rng, classes, dim, n_train, n_test, ks, T, spread, scale_range):
    means = rng.normal(size=(classes, dim)) * spread
    ytr = rng.integers(0, classes, size=n_train)
    yte = rng.integers(0, classes, size=n_test)
    xtr = means[ytr] + rng.normal(size=(n_train, dim))
    xte = means[yte] + rng.normal(size=(n_test, dim))
    # rows of very different norms: cosine similarity must not care
    xtr *= np.exp(rng.uniform(*scale_range, size=(n_train, 1)))
    xte *= np.exp(rng.uniform(*scale_range, size=(n_test, 1)))
    xtr = xtr.astype(np.float32)
    xte = xte.astype(np.float32)
    ttr, tte = torch.from_numpy(xtr), torch.from_numpy(xte)
    ltr, lte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    used = [min(k, n_train) for k in ks]
    if not neighbour_margins_ok(ttr, tte, used):
        return None
    results = []
    for k in used:
        top1, top5, probs, pred, hit5 = knn_classifier(ttr, ltr, tte, lte, k, T, classes)
        results.append({
            "k": k,
            "top1": top1,
            "top5": top5 if classes >= 5 else None,
            "votes": f32(probs),
            "pred": pred,
            "hit5": hit5 if classes >= 5 else None,
            "ambiguous": ambiguous(probs, lte, k),
        })
    return {
        "name": name, "classes": classes, "dim": dim, "T": T, "ks": ks,
        "train_x": f32(xtr), "train_y": ytr.tolist(),
        "test_x": f32(xte), "test_y": yte.tolist(),
        "results": results,
    }


def main():
    rng = np.random.default_rng(20230501)
    cases = [
        case("seven-classes", rng, 7, 16, 300, 90, [1, 3, 5, 10, 20], 0.07, 0.6, (0, 0)),
        case("scaled-rows", rng, 12, 24, 400, 80, [10, 20, 100, 200], 0.07, 0.5, (-6, 6)),
        case("few-classes-capped", rng, 4, 8, 12, 10, [5, 50], 0.1, 1.0, (0, 0)),
        case("many-classes", rng, 30, 8, 200, 50, [10, 200], 0.07, 1.5, (-1, 1)),
    ]
    json.dump({"generator": "gen_knn.py (torch %s)" % torch.__version__, "cases": cases}, __import__("sys").stdout)


if __name__ == "__main__":
    main()
