#!/usr/bin/python3
"""Golden vectors for trainer/eval's linear probe: the same training written
in torch 1.13.

Run with /usr/bin/python3 from this folder:

    /usr/bin/python3 gen_linear.py > linear_golden.json

The probe as torch would run it: nn.Linear with zero-initialised weight and
bias, F.cross_entropy (batch mean), torch.optim.SGD(momentum, weight_decay),
its lr set before every step from the cosine schedule
final + 0.5·(lr − final)·(1 + cos(π·i/total)), i = 0 … total−1, and the
samples taken in their stored order (the Go test replaces the seeded
shuffle by the identity), the last batch of an epoch smaller when the batch
size does not divide the train size. Standardisation, when on, uses the
train set's mean and population standard deviation (a dimension with zero
deviation is only centred), applied in float32 as (x − mean)·(1/std).
"""
import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F


def f32(a):
    return [float(repr(v)) for v in np.asarray(a, dtype=np.float32).ravel()]


def standardisation(x):
    xd = x.astype(np.float64)
    mean = xd.mean(0)
    sd = np.sqrt(((xd - mean) ** 2).mean(0))
    scale = np.where(sd > 1e-12, 1 / np.where(sd > 1e-12, sd, 1), 1.0)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(scale.astype(np.float32))


def case(name, rng, n_train, n_test, dim, classes, epochs, bs, lr, final_lr, momentum, wd, standardize):
    means = rng.normal(size=(classes, dim)) * 1.2
    ytr = rng.integers(0, classes, size=n_train)
    yte = rng.integers(0, classes, size=n_test)
    # dimensions of different offsets and scales; the last is constant
    offset = rng.normal(size=dim) * 5
    scale = np.exp(rng.uniform(-2, 2, size=dim))
    xtr = (means[ytr] + rng.normal(size=(n_train, dim))) * scale + offset
    xte = (means[yte] + rng.normal(size=(n_test, dim))) * scale + offset
    xtr[:, -1] = 3.0
    xte[:, -1] = 3.0 + rng.normal(size=n_test)
    xtr, xte = xtr.astype(np.float32), xte.astype(np.float32)

    tr, te = torch.from_numpy(xtr), torch.from_numpy(xte)
    if standardize:
        mean, sc = standardisation(xtr)
        tr, te = (tr - mean) * sc, (te - mean) * sc
    ltr = torch.from_numpy(ytr.astype(np.int64))

    model = torch.nn.Linear(dim, classes)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    iters = math.ceil(n_train / bs)
    total = epochs * iters
    step = 0
    for _ in range(epochs):
        losses = []
        for lo in range(0, n_train, bs):
            for g in opt.param_groups:
                g["lr"] = final_lr + 0.5 * (lr - final_lr) * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(tr[lo:lo + bs]), ltr[lo:lo + bs])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        train_loss = sum(losses) / len(losses)

    with torch.no_grad():
        logits = model(te)
    order = logits.argsort(1, descending=True)
    rank = (order == torch.from_numpy(yte.astype(np.int64)).view(-1, 1)).float().argmax(1)
    top1 = (rank < 1).float().mean().item() * 100
    top5 = (rank < 5).float().mean().item() * 100 if classes >= 5 else None
    # the smallest gap between a sample's two best scores: the Go test needs
    # it well above float32 noise for the accuracies to be comparable
    top2 = logits.topk(2, 1).values
    margin = (top2[:, 0] - top2[:, 1]).min().item()
    return {
        "name": name, "classes": classes, "dim": dim,
        "epochs": epochs, "batch_size": bs, "lr": lr, "final_lr": final_lr,
        "momentum": momentum, "weight_decay": wd, "standardize": standardize,
        "train_x": f32(xtr), "train_y": ytr.tolist(),
        "test_x": f32(xte), "test_y": yte.tolist(),
        "weight": f32(model.weight.detach().numpy()), "bias": f32(model.bias.detach().numpy()),
        "train_loss": train_loss, "top1": top1, "top5": top5, "min_margin": margin,
        "test_logits": f32(logits.numpy()),
    }


def main():
    rng = np.random.default_rng(7)
    cases = [
        case("standardised-minibatch", rng, 70, 40, 10, 6, 5, 16, 0.2, 0.001, 0.9, 1e-3, True),
        case("raw-full-batch", rng, 40, 30, 5, 3, 20, 40, 0.05, 0.0, 0.9, 0.0, False),
        case("no-momentum", rng, 30, 25, 4, 5, 3, 7, 0.5, 0.0, 0.0, 0.01, True),
    ]
    json.dump({"generator": "gen_linear.py (torch %s)" % torch.__version__, "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
