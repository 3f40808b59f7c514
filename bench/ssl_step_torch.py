"""One self-supervised training step in PyTorch, the side-by-side reference
of `sslight bench step`: the same backbone (python/sslight_torch.py builds
sslight's architectures, widths and stems), head, views, loss, LARS with the
reference's parameter groups and EMA, in the reference code's form
(SSLight's DINO / MoCo trainers: views of one size concatenated into one
forward, the re-balanced loss L = a*L_g + (1-a)*L_l).

Prints one JSON line: images/s, images per CPU-second, CPU/wall, peak RSS.

  /usr/bin/python3 bench/ssl_step_torch.py --method dino --arch resnet18 --width 0.25 --small-stem \
      --global-size 28 --local-size 16 --batch 128 --head-out 1024 --head-hidden 512 --head-bottleneck 128
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import sslight_torch  # noqa: E402


class DINOHead(nn.Module):
    """The reference's DINOHead: MLP with BN and GELU to a bottleneck, L2
    normalisation, weight-normalised last layer (norm fixed at 1)."""

    def __init__(self, in_dim, out_dim, hidden, bottleneck, layers=3, use_bn=True):
        super().__init__()
        mods = [nn.Linear(in_dim, hidden)]
        if use_bn:
            mods.append(nn.BatchNorm1d(hidden))
        mods.append(nn.GELU())
        for _ in range(layers - 2):
            mods.append(nn.Linear(hidden, hidden))
            if use_bn:
                mods.append(nn.BatchNorm1d(hidden))
            mods.append(nn.GELU())
        mods.append(nn.Linear(hidden, bottleneck))
        self.mlp = nn.Sequential(*mods)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        x = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)


class MultiCrop(nn.Module):
    """MultiCropWrapper: one backbone pass per view size, one head pass."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, views):
        return self.head(torch.cat([self.backbone(v) for v in views]))


class LARS(torch.optim.Optimizer):
    """DINO's LARS: weight decay and the trust ratio for >1-d parameters."""

    def __init__(self, params, lr=0, weight_decay=0, momentum=0.9, eta=0.001):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta))

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g["params"]:
                dp = p.grad
                if dp is None:
                    continue
                if p.ndim != 1:
                    dp = dp.add(p, alpha=g["weight_decay"])
                    param_norm, update_norm = torch.norm(p), torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(param_norm > 0., torch.where(update_norm > 0, (g["eta"] * param_norm / update_norm), one), one)
                    dp = dp.mul(q)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu = state["mu"]
                mu.mul_(g["momentum"]).add_(dp)
                p.add_(mu, alpha=-g["lr"])


def groups(model):
    reg, not_reg = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (not_reg if name.endswith(".bias") or p.ndim == 1 else reg).append(p)
    return [{"params": reg}, {"params": not_reg, "weight_decay": 0.0}]


def dino_loss(student_out, teacher_out, center, ncrops, lambdas, student_temp=0.1, teacher_temp=0.04):
    s = (student_out / student_temp).chunk(ncrops)
    t = F.softmax((teacher_out - center) / teacher_temp, dim=-1).detach().chunk(2)
    lg, ng, ll, nl = 0, 0, 0, 0
    for iq, q in enumerate(t):
        for v in range(ncrops):
            if v == iq:
                continue
            term = torch.sum(-q * F.log_softmax(s[v], dim=-1), dim=-1).mean()
            if v < 2:
                lg, ng = lg + term, ng + 1
            else:
                ll, nl = ll + term, nl + 1
    loss = lambdas[0] * lg / max(ng, 1) + lambdas[1] * ll / max(nl, 1)
    with torch.no_grad():
        batch_center = torch.sum(teacher_out, dim=0, keepdim=True) / len(teacher_out)
        center.mul_(0.9).add_(batch_center * 0.1)
    return loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=["dino", "moco"], required=True)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--small-stem", action="store_true")
    ap.add_argument("--global-size", type=int, default=224)
    ap.add_argument("--local-size", type=int, default=96)
    ap.add_argument("--locals", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--head-out", type=int, default=4096)
    ap.add_argument("--head-hidden", type=int, default=2048)
    ap.add_argument("--head-bottleneck", type=int, default=256)
    ap.add_argument("--moco-dim", type=int, default=128)
    ap.add_argument("--moco-queue", type=int, default=65536)
    ap.add_argument("--lambdas", type=float, nargs=2, default=[0.4, 0.6])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    mf = torch.channels_last if a.channels_last else torch.contiguous_format
    B = a.batch
    g = [torch.randn(B, 3, a.global_size, a.global_size).contiguous(memory_format=mf) for _ in range(2)]
    l = [torch.randn(B, 3, a.local_size, a.local_size).contiguous(memory_format=mf) for _ in range(a.locals)]
    globals_, locals_ = torch.cat(g).contiguous(memory_format=mf), torch.cat(l).contiguous(memory_format=mf)

    def backbone():
        return sslight_torch.build(a.arch, a.width, a.small_stem)

    if a.method == "dino":
        bb = backbone()
        student = MultiCrop(bb, DINOHead(_embed_dim(bb, a), a.head_out, a.head_hidden, a.head_bottleneck))
        teacher = MultiCrop(backbone(), DINOHead(_embed_dim(bb, a), a.head_out, a.head_hidden, a.head_bottleneck))
        teacher.load_state_dict(student.state_dict())
        for p in teacher.parameters():
            p.requires_grad = False
        student, teacher = student.to(memory_format=mf), teacher.to(memory_format=mf)
        center = torch.zeros(1, a.head_out)
        opt = LARS(groups(student), lr=0.01, weight_decay=1e-6)
        sp = [p for p in student.parameters()]
        tp = [p for p in teacher.parameters()]

        def step():
            teacher_out = teacher([globals_])
            student_out = student([globals_, locals_])
            loss = dino_loss(student_out, teacher_out, center, 2 + a.locals, a.lambdas)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                torch._foreach_mul_(tp, 0.996)
                torch._foreach_add_(tp, sp, alpha=1 - 0.996)
            return loss
    else:
        bbq = backbone()
        dim = _embed_dim(bbq, a)

        def head():
            return nn.Sequential(nn.Linear(dim, 2048), nn.ReLU(inplace=True), nn.Linear(2048, a.moco_dim))

        q_enc = nn.Sequential(bbq, head()).to(memory_format=mf)
        k_enc = nn.Sequential(backbone(), head()).to(memory_format=mf)
        k_enc.load_state_dict(q_enc.state_dict())
        for p in k_enc.parameters():
            p.requires_grad = False
        queue = F.normalize(torch.randn(a.moco_dim, a.moco_queue), dim=0)
        ptr = [0]
        opt = LARS(groups(q_enc), lr=0.01, weight_decay=1e-6)
        qp, kp = list(q_enc.parameters()), list(k_enc.parameters())

        def step():
            with torch.no_grad():
                torch._foreach_mul_(kp, 0.999)
                torch._foreach_add_(kp, qp, alpha=1 - 0.999)
                k = F.normalize(k_enc(g[0].contiguous(memory_format=mf)), dim=1)
            qs = torch.cat([q_enc[1](q_enc[0](g[1])), q_enc[1](q_enc[0](locals_))])
            qs = F.normalize(qs, dim=1)
            kk = k.repeat(1 + a.locals, 1)
            pos = torch.einsum("nc,nc->n", qs, kk).unsqueeze(-1)
            neg = torch.einsum("nc,ck->nk", qs, queue.clone().detach())
            logits = torch.cat([pos, neg], dim=1) / 0.2
            labels = torch.zeros(logits.shape[0], dtype=torch.long)
            ce = F.cross_entropy(logits, labels, reduction="none")
            loss = a.lambdas[0] * ce[:B].mean() + a.lambdas[1] * ce[B:].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                p = ptr[0]
                queue[:, p:p + B] = k.T
                ptr[0] = (p + B) % a.moco_queue
            return loss

    for _ in range(a.warmup):
        step()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(a.steps):
        step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"method": a.method, "arch": a.arch, "width": a.width, "batch": B,
                      "views": "2x%d+%dx%d" % (a.global_size, a.locals, a.local_size),
                      "memory_format": "channels_last" if a.channels_last else "nchw", "threads": a.threads,
                      "images_per_s": a.steps * B / wall, "images_per_cpu_s": a.steps * B / cpu,
                      "cpu_per_wall": cpu / wall, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _embed_dim(bb, a):
    with torch.no_grad():
        bb.eval()
        d = bb(torch.zeros(1, 3, a.global_size, a.global_size)).shape[-1]
        bb.train()
    return d


if __name__ == "__main__":
    main()
