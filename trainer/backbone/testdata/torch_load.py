# Loads a safetensors file written by sslight into torchvision's model with
# load_state_dict(strict=True), runs it on the input given as .npy in eval
# mode, and prints the pooled embedding (fc replaced by identity) as JSON.
# Usage: /usr/bin/python3 torch_load.py ARCH WEIGHTS.safetensors INPUT.npy
import json, struct, sys
import numpy as np
import torch, torchvision

arch, weights, inp = sys.argv[1:4]
with open(weights, 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
state = {}
for name, t in header.items():
    if name == '__metadata__':
        continue
    lo, hi = t['data_offsets']
    dt = {'F32': np.float32, 'I64': np.int64}[t['dtype']]
    state[name] = torch.from_numpy(np.frombuffer(data[lo:hi], dtype=dt).reshape(t['shape']).copy())
model = getattr(torchvision.models, arch)()
model.load_state_dict(state, strict=True)
if arch.startswith('resnet'):
    model.fc = torch.nn.Identity()
else:
    model.classifier = torch.nn.Identity()
model.eval()
with torch.no_grad():
    y = model(torch.from_numpy(np.load(inp)))
print(json.dumps(y.flatten().tolist()))
