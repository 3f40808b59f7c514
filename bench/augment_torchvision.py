#!/usr/bin/env python3
"""Throughput of the reference multi-crop augmentation with torchvision 0.14 + PIL 9.4.

The job per image is what sslight's augment package does: decode the JPEG to
RGB, then make 2 global views (RandomResizedCrop 224, bicubic) and N local
views with the reference's flip / colour jitter / grayscale / Gaussian blur /
solarization policy (SSLight src/data/transforms.py, MultiCropsDataAugmentation,
re-expressed here), and materialise every view as a uint8 array. ToTensor +
Normalize is left out on both sides: the shards store uint8 crops.

Single-threaded (torch.set_num_threads(1)); the encoded files are read into
memory first so only decode + augmentation is timed. Prints one JSON line.

    /usr/bin/python3 bench/augment_torchvision.py --dir /work/shared/photos --local-size 128
"""
import argparse
import glob
import io
import json
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms


class RandomGaussianBlur:
    """The reference's blur: applied when random.random() <= p, radius U(lo, hi)."""

    def __init__(self, p, lo=0.1, hi=2.0):
        self.p, self.lo, self.hi = p, lo, hi

    def __call__(self, img):
        if random.random() > self.p:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.lo, self.hi)))


class RandomSolarize:
    """The reference's solarization: applied when random.random() < p (threshold 128)."""

    def __init__(self, p):
        self.p = p

    def __call__(self, img):
        return ImageOps.solarize(img) if random.random() < self.p else img


def build(args):
    bic = transforms.InterpolationMode.BICUBIC
    flip_jitter_gray = transforms.Compose([
        transforms.RandomHorizontalFlip(p=0.5),
        transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        transforms.RandomGrayscale(p=0.2),
    ])
    global_crop = transforms.RandomResizedCrop(224, scale=tuple(args.global_scale), interpolation=bic)
    local_crop = transforms.RandomResizedCrop(args.local_size, scale=tuple(args.local_scale), interpolation=bic)
    global1 = transforms.Compose([flip_jitter_gray, RandomGaussianBlur(1.0)])
    global2 = transforms.Compose([flip_jitter_gray, RandomGaussianBlur(0.1), RandomSolarize(0.2)])
    local = transforms.Compose([flip_jitter_gray, RandomGaussianBlur(0.5)])

    def views(img):
        out = [global1(global_crop(img)), global2(global_crop(img))]
        for _ in range(args.local_crops):
            out.append(local(local_crop(img)))
        return [np.asarray(v) for v in out]

    return views


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.environ.get("SSLIGHT_PHOTOS", "testdata/photos"))
    ap.add_argument("--local-size", type=int, default=128)
    ap.add_argument("--local-crops", type=int, default=6)
    ap.add_argument("--global-scale", type=float, nargs=2, default=None)
    ap.add_argument("--local-scale", type=float, nargs=2, default=None)
    ap.add_argument("--images", type=int, default=0, help="images to process (default: one pass over --dir)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    # SSLight scales go with local 128, the DINO baseline's with local 96.
    sslight = args.local_size != 96
    if args.global_scale is None:
        args.global_scale = [0.3, 1.0] if sslight else [0.14, 1.0]
    if args.local_scale is None:
        args.local_scale = [0.05, 0.3] if sslight else [0.05, 0.14]

    torch.set_num_threads(1)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    files = sorted(glob.glob(os.path.join(args.dir, "*.jpg")))
    if not files:
        sys.exit("no JPEGs in %s" % args.dir)
    data = [open(f, "rb").read() for f in files]
    n = args.images or len(data)
    views = build(args)

    def one(i):
        img = Image.open(io.BytesIO(data[i % len(data)])).convert("RGB")
        return views(img)

    for i in range(args.warmup):
        one(i)
    cpu0 = time.process_time()
    start = time.perf_counter()
    for i in range(n):
        one(i)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    print(json.dumps({"impl": "torchvision", "torchvision": __import__("torchvision").__version__,
                      "pil": Image.__version__, "local_size": args.local_size, "images": n,
                      "seconds": round(elapsed, 4), "cpu_seconds": round(cpu, 4),
                      "images_per_s": round(n / elapsed, 4), "images_per_cpu_s": round(n / cpu, 4)}))


if __name__ == "__main__":
    main()
