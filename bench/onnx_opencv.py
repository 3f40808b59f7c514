#!/usr/bin/env python3
"""Inference throughput of an sslight ONNX export in OpenCV's DNN module, the
other side of bench/onnx_ratio.sh (bench/onnxbench times sslight itself).

Loads DIR/model.onnx with cv2.dnn.readNetFromONNX, one thread
(cv2.setNumThreads(1)), and times the forward pass (output "embedding") over
DIR/x.npy [N, 3, S, S], one batch of all N images per pass, after one untimed
pass; also checks that OpenCV's embeddings are finite. Prints one JSON line.

    /usr/bin/python3 bench/onnx_opencv.py /tmp/b --reps 5
"""
import argparse
import json
import resource
import time

import cv2
import numpy as np


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    cv2.setNumThreads(1)
    net = cv2.dnn.readNetFromONNX(a.dir + "/model.onnx")
    x = np.load(a.dir + "/x.npy")
    net.setInput(x)
    y = net.forward("embedding")  # warm-up: allocates and fuses
    if not np.isfinite(y).all():
        raise SystemExit("OpenCV's embeddings are not finite")
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    for _ in range(a.reps):
        net.setInput(x)
        net.forward("embedding")
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    n = x.shape[0] * a.reps
    print(json.dumps({"impl": "opencv " + cv2.__version__, "images": n, "seconds": round(elapsed, 4),
                      "images_per_s": round(n / elapsed, 4), "images_per_cpu_s": round(n / cpu, 4)}))


if __name__ == "__main__":
    main()
