"""Reference values for trainer/detect, from CenterNet's formulas written
out in torch 1.13 (run with /usr/bin/python3; writes centernet.json).

Losses follow src/lib/models/losses.py (_neg_loss, RegL1Loss) and
src/lib/models/utils.py (_sigmoid with its clamp); targets follow
src/lib/utils/image.py (gaussian_radius, draw_umich_gaussian) as used by
src/lib/datasets/sample/ctdet.py. Gradients come from autograd.
"""
import json
import math

import numpy as np
import torch

torch.manual_seed(0)


def clamped_sigmoid(x):
    return torch.clamp(x.sigmoid(), min=1e-4, max=1 - 1e-4)


def neg_loss(pred, gt):
    pos = gt.eq(1).float()
    neg = gt.lt(1).float()
    negw = torch.pow(1 - gt, 4)
    pos_loss = (torch.log(pred) * torch.pow(1 - pred, 2) * pos).sum()
    neg_loss = (torch.log(1 - pred) * torch.pow(pred, 2) * negw * neg).sum()
    num_pos = pos.sum()
    if num_pos == 0:
        return -neg_loss
    return -(pos_loss + neg_loss) / num_pos


def gaussian_radius(h, w, m=0.7):
    b1 = h + w
    c1 = w * h * (1 - m) / (1 + m)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - m) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 4 * 4 * c2)) / 2
    a3 = 4 * m
    b3 = -2 * m * (h + w)
    c3 = (m - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def gaussian2d(shape, sigma):
    m, n = [(s - 1.) / 2. for s in shape]
    y, x = np.ogrid[-m:m + 1, -n:n + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h


def draw(heat, center, radius):
    d = 2 * radius + 1
    g = gaussian2d((d, d), sigma=d / 6)
    x, y = int(center[0]), int(center[1])
    H, W = heat.shape
    left, right = min(x, radius), min(W - x, radius + 1)
    top, bottom = min(y, radius), min(H - y, radius + 1)
    mh = heat[y - top:y + bottom, x - left:x + right]
    mg = g[radius - top:radius + bottom, radius - left:radius + right]
    np.maximum(mh, mg, out=mh)


# Targets: objects on a 2-image, 3-class, 10x12 grid (boxes x, y, w, h in cells).
N, K, H, W = 2, 3, 10, 12
objs = [(0, 1, [1.0, 2.0, 4.0, 3.0]), (0, 2, [6.3, 0.5, 5.2, 6.1]), (1, 0, [0.0, 0.0, 2.5, 2.5]),
        (1, 0, [8.5, 6.0, 3.0, 3.9]), (1, 2, [3.0, 3.0, 1.0, 1.0])]
heat = np.zeros((N, K, H, W), np.float32)
centres = []
for i, c, b in objs:
    ct = np.array([b[0] + b[2] / 2, b[1] + b[3] / 2], dtype=np.float32)
    ci = ct.astype(np.int32)
    r = max(0, int(gaussian_radius(math.ceil(b[3]), math.ceil(b[2]))))
    draw(heat[i, c], ci, r)
    centres.append({"image": i, "class": c, "x": int(ci[0]), "y": int(ci[1]), "radius": r,
                    "size": [b[2], b[3]], "offset": [float(ct[0] - ci[0]), float(ct[1] - ci[1])]})

# Losses on random logits (a few pushed past the clamp).
x = (torch.randn(N, K, H, W) * 2).float()
x[0, 0, 0, :3] = torch.tensor([12.0, -12.0, 9.5])
x.requires_grad_(True)
gt = torch.from_numpy(heat)
fl = neg_loss(clamped_sigmoid(x), gt)
fl.backward()

reg = torch.randn(N, 4, H, W).float().requires_grad_(True)
ind = torch.tensor([([o["y"] * W + o["x"] for o in centres if o["image"] == i] + [0] * 3)[:3] for i in range(N)])
mask = torch.tensor([([1.0] * sum(o["image"] == i for o in centres) + [0.0] * 3)[:3] for i in range(N)])
l1 = {}
for name, ch, key in [("size", slice(0, 2), "size"), ("offset", slice(2, 4), "offset")]:
    tgt = torch.zeros(N, 3, 2)
    cnt = [0] * N
    for o in centres:
        tgt[o["image"], cnt[o["image"]]] = torch.tensor(o[key])
        cnt[o["image"]] += 1
    feat = reg[:, ch].permute(0, 2, 3, 1).reshape(N, H * W, 2)
    pred = feat.gather(1, ind.unsqueeze(2).expand(N, 3, 2))
    m = mask.unsqueeze(2).expand_as(pred)
    loss = torch.nn.functional.l1_loss(pred * m, tgt * m, reduction="sum") / (m.sum() + 1e-4)
    g, = torch.autograd.grad(loss, reg)
    l1[name] = {"loss": loss.item(), "grad": g.flatten().tolist()}

json.dump({
    "shape": [N, K, H, W],
    "objects": [{"image": i, "class": c, "box": b} for i, c, b in objs],
    "centres": centres,
    "heat": heat.flatten().tolist(),
    "radii": [[h, w, gaussian_radius(h, w)] for h, w in [(1, 1), (3, 4), (7, 6), (12, 30), (50, 50)]],
    "logits": x.detach().flatten().tolist(),
    "focal_loss": fl.item(),
    "focal_grad": x.grad.flatten().tolist(),
    "reg": reg.detach().flatten().tolist(),
    "l1": l1,
}, open("centernet.json", "w"))
