#!/usr/bin/env python3
"""PyTorch's side of the device check (bench/gpu_check.sh): throughput and
peak GPU memory of PyTorch eager fp32 on the jobs `gpucheck -phase bench`
times, printed as the same JSON records (phase "bench", side "pytorch").

The job is the Go side's, on a batch of random N(0, 1) images, NCHW:

  train  model.train(); embedding = model(x) (classifier replaced by
         Identity); embedding.mean().backward(); no optimiser step, the
         gradients accumulate (as the executor's do)
  infer  model.eval() under torch.inference_mode(): the embedding only

TF32 is off for cuBLAS and cuDNN unless --tf32 (sslight's default is off
too); cudnn.benchmark is PyTorch's default (off) unless --benchmark. Peak
memory is torch.cuda.max_memory_allocated (and _reserved) over the timed
steps, the cache emptied between measurements. torchvision's models are
used when torchvision is installed, else the definitions below (the same
architectures, torchvision's structure).

    /opt/torch/.venv/bin/python3 bench/gpu_torch.py --steps 10 --warmup 3
"""
import argparse
import json
import sys
import time

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + identity)


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for i, c in enumerate((64, 128, 256, 512)):
            layers.append(nn.Sequential(BasicBlock(cin, c, 1 if i == 0 else 2), BasicBlock(c, c, 1)))
            cin = c
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return torch.flatten(self.avgpool(self.layers(x)), 1)


def conv_bn(cin, cout, k, stride, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else [conv_bn(cin, hidden, 1, 1)]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self):
        super().__init__()
        layers, cin = [conv_bn(3, 32, 3, 2)], 32
        for t, c, n, s in self.settings:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, 1280, 1, 1))
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)


def build(arch):
    try:
        import torchvision
        m = getattr(torchvision.models, arch)()
        if arch.startswith("resnet"):
            m.fc = nn.Identity()
        else:
            m.classifier = nn.Identity()
        return m, "torchvision %s" % torchvision.__version__
    except ImportError:
        return {"resnet18": ResNet18, "mobilenet_v2": MobileNetV2}[arch](), "built-in definitions"


def measure(arch, size, batch, mode, steps, warmup):
    torch.cuda.empty_cache()
    model, _ = build(arch)
    model = model.cuda()
    x = torch.randn(batch, 3, size, size, device="cuda")
    model.train(mode == "train")

    def step():
        if mode == "train":
            model(x).mean().backward()
        else:
            with torch.inference_mode():
                model(x)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    rec = {"images_per_s": batch * steps / dt, "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
           "reserved_mib": torch.cuda.max_memory_reserved() / 2**20}
    del model, x
    return rec


CASES = [(a, s, b, m) for a in ("resnet18", "mobilenet_v2")
         for (s, b, m) in ((224, 64, "train"), (96, 128, "train"), (224, 64, "infer"))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget", type=float, default=90, help="seconds after which no new measurement starts")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--benchmark", action="store_true", help="cudnn.benchmark")
    ap.add_argument("--archs", default="", help="comma-separated architectures to keep")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = a.benchmark
    _, source = build("resnet18")
    print(json.dumps({"phase": "info", "device": "PyTorch on " + torch.cuda.get_device_name(0), "details": {
        "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "models": source, "tf32": a.tf32, "cudnn_benchmark": a.benchmark}}), flush=True)
    start = time.time()
    keep = set(filter(None, a.archs.split(",")))
    for arch, size, batch, mode in CASES:
        if keep and arch not in keep:
            continue
        rec = {"phase": "bench", "side": "pytorch", "arch": arch, "size": size, "batch": batch, "mode": mode, "steps": a.steps}
        if time.time() - start > a.budget:
            rec["error"] = "out of time"
        else:
            try:
                rec.update(measure(arch, size, batch, mode, a.steps, a.warmup))
            except Exception as e:  # one failed measurement must not stop the rest
                rec["error"] = "%s: %s" % (type(e).__name__, e)
        print(json.dumps(rec), flush=True)
        print("pytorch %s %d b%d %s: %s" % (arch, size, batch, mode, rec.get("images_per_s", rec.get("error"))), file=sys.stderr)


if __name__ == "__main__":
    main()
