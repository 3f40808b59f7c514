#!/usr/bin/env python3
"""Check sslight's ONNX exports with runtimes that are not sslight's.

For each case of a JSON manifest this loads the model with ONNX's own checker
(onnx.checker.check_model(full_check=True)) and strict shape inference
(onnx.shape_inference.infer_shapes(strict_mode=True), which must give every
value a shape and agree with the declared outputs), then runs it with
OpenCV's DNN module (cv2.dnn.readNetFromONNX, one thread) on the case's
input and compares every output with the expected values:

    relative error = max |opencv - expected| / max |expected|   (per output)

With "dynamic": true the model also runs on the first image alone, which a
dynamic batch must allow. Needs numpy, onnx and cv2 (Debian: python3-onnx,
python3-opencv); prints one JSON object:

    {"versions": {...}, "cases": [{"name", "checker", "shape_inference",
      "relative": {output: err}, "relative_batch1": {...}, "error"}]}

Usage: check_onnx.py manifest.json, the manifest being
    {"cases": [{"name": str, "model": path, "input": x.npy,
                "expected": {output: y.npy}, "dynamic": bool}]}
sslight's Go tests (trainer/export) write the manifest and read the result.
"""
import json
import sys

import cv2
import numpy as np
import onnx
from onnx import shape_inference


def relative(got, want):
    got = np.asarray(got, dtype=np.float64).reshape(want.shape)
    scale = float(np.max(np.abs(want)))
    err = float(np.max(np.abs(got - want)))
    return err / scale if scale > 0 else err


def shapes_known(model):
    """Runs strict shape inference; returns the values left without a full shape."""
    inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    g = inferred.graph
    known = {}
    for v in list(g.value_info) + list(g.output) + list(g.input):
        t = v.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") or d.HasField("dim_param") for d in t.shape.dim):
            known[v.name] = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
    inits = {i.name for i in g.initializer}
    missing = [o for n in g.node for o in n.output if o not in known and o not in inits]
    return missing


def check(case):
    out = {"name": case["name"]}
    try:
        model = onnx.load(case["model"])
        onnx.checker.check_model(model, full_check=True)
        out["checker"] = "ok"
        missing = shapes_known(model)
        out["shape_inference"] = "ok" if not missing else "no shape for %d values: %s" % (len(missing), missing[:5])
        x = np.load(case["input"])
        names = list(case["expected"])
        net = cv2.dnn.readNetFromONNX(case["model"])
        net.setInput(x)
        got = net.forward(names)
        out["relative"] = {n: relative(g, np.load(case["expected"][n])) for n, g in zip(names, got)}
        if case.get("dynamic") and x.shape[0] > 1:
            net.setInput(np.ascontiguousarray(x[:1]))
            got = net.forward(names)
            out["relative_batch1"] = {n: relative(g, np.load(case["expected"][n])[:1]) for n, g in zip(names, got)}
    except Exception as e:  # reported to the Go test, which fails on it
        out["error"] = "%s: %s" % (type(e).__name__, str(e).strip()[-2000:])
    return out


def main():
    cv2.setNumThreads(1)
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    result = {"versions": {"onnx": onnx.__version__, "opencv": cv2.__version__, "numpy": np.__version__},
              "cases": [check(c) for c in manifest["cases"]]}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
