# Writes reference.safetensors, a features part laid out by hand from the
# safetensors specification with numpy (not by sslight's writer), so the
# Go reader is checked against an independent encoder. Run with
# /usr/bin/python3 gen_reference.py.
import json
import struct

import numpy as np

features = np.array([[1.5, -2.0, 0.25], [3.0, 4.0, 5.0]], dtype="<f4")
labels = np.array([2, -1], dtype="<i8")
keys = ["b/x.png", "a/y.png"]

# Labels first in the data section, to check that the reader follows the
# offsets rather than assuming an order.
lab = labels.tobytes()
feat = features.tobytes()
header = {
    "__metadata__": {
        "format": "sslight-features/v1",
        "keys": json.dumps(keys),
        "config_hash": "abc123",
    },
    "labels": {"dtype": "I64", "shape": [2], "data_offsets": [0, len(lab)]},
    "features": {"dtype": "F32", "shape": [2, 3], "data_offsets": [len(lab), len(lab) + len(feat)]},
}
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open("reference.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    f.write(lab)
    f.write(feat)
