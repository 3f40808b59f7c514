#!/usr/bin/env python3
"""Throughput and peak memory of a torchvision backbone in PyTorch, the
reference for `sslight bench model` (bench/backbone_ratio.sh runs both).

The job is the one sslight's bench times, on a batch of random N(0, 1)
images, float32, NCHW (PyTorch's default layout):

  train  model.train(); loss = mean of the pooled embedding (the classifier
         is replaced by Identity); loss.backward(); a plain SGD step
         (lr 1e-4, no momentum); gradients zeroed
  infer  model.eval() under torch.inference_mode(): the embedding only

One phase per process, so the peak RSS (VmHWM of /proc/self/status at the
end) is that phase's own, torch's import included. Prints one JSON line.

    /usr/bin/python3 bench/backbone_torch.py --arch mobilenet_v2 --size 96 --batch 64 --mode train
"""
import argparse
import json
import time

import torch
import torchvision


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def build(arch, width):
    if arch == "mobilenet_v2":
        m = torchvision.models.mobilenet_v2(width_mult=width)
        m.classifier = torch.nn.Identity()
    elif arch in ("resnet18", "resnet34", "resnet50"):
        if width != 1:
            raise SystemExit("--width: torchvision's ResNets have none; sslight's is not mirrored here")
        m = getattr(torchvision.models, arch)()
        m.fc = torch.nn.Identity()
    else:
        raise SystemExit("--arch %s: want mobilenet_v2, resnet18, resnet34 or resnet50" % arch)
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True)
    ap.add_argument("--width", type=float, default=1.0, help="mobilenet_v2 width_mult")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mode", choices=("train", "infer"), default="train")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build(args.arch, args.width)
    x = torch.randn(args.batch, 3, args.size, args.size)
    params = sum(p.numel() for p in model.parameters())

    if args.mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-4)

        def step():
            opt.zero_grad()
            model(x).mean().backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.inference_mode():
                model(x)

    for _ in range(args.warmup):
        step()
    cpu0, start = time.process_time(), time.perf_counter()
    for _ in range(args.steps):
        step()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    images = args.batch * args.steps
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "arch": args.arch, "size": args.size,
                      "batch": args.batch, "steps": args.steps, "threads": torch.get_num_threads(),
                      "mode": args.mode, "params": params,
                      "images_per_s": round(images / wall, 4), "images_per_cpu_s": round(images / cpu, 4),
                      "seconds_per_step": round(wall / args.steps, 4), "peak_rss_mib": round(peak_rss_mib(), 1)}))


if __name__ == "__main__":
    main()
