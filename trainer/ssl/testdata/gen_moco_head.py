# Generates moco_head.json: the reference's MOCOHead (src/sslight/model/moco.py,
# re-typed here: Linear-[BN]-ReLU-...-Linear) in train mode on a small random
# batch, and F.normalize of its output as MOCO.forward applies it, with
# torch 1.13.
# Run: /usr/bin/python3 gen_moco_head.py > moco_head.json
import json
import torch
import torch.nn as nn


def mlp(in_dim, hidden, out, layers, use_bn):
    if layers == 1:
        return nn.Linear(in_dim, out)
    mods = [nn.Linear(in_dim, hidden)]
    if use_bn:
        mods.append(nn.BatchNorm1d(hidden))
    mods.append(nn.ReLU())
    for _ in range(layers - 2):
        mods.append(nn.Linear(hidden, hidden))
        if use_bn:
            mods.append(nn.BatchNorm1d(hidden))
        mods.append(nn.ReLU())
    mods.append(nn.Linear(hidden, out))
    return nn.Sequential(*mods)


torch.manual_seed(7)
cases = []
for use_bn, layers in ((False, 2), (True, 3), (False, 1)):
    in_dim, hidden, out, n = 6, 8, 4, 5
    head = mlp(in_dim, hidden, out, layers, use_bn)
    weights = {"mlp." + key: v.detach().flatten().tolist()
               for key, v in head.state_dict().items() if v.dtype == torch.float32}
    x = torch.randn(n, in_dim, requires_grad=True)
    r = torch.randn(n, out)
    q = head(x)
    qn = nn.functional.normalize(q, dim=-1)
    (q * r).sum().backward()
    first = head if layers == 1 else head[0]
    last = head if layers == 1 else head[-1]
    cases.append({
        "use_bn": use_bn, "layers": layers, "dims": [in_dim, hidden, out], "n": n,
        "weights": weights,
        "x": x.detach().flatten().tolist(), "r": r.flatten().tolist(),
        "q": q.detach().flatten().tolist(),
        "q_normalized": qn.detach().flatten().tolist(),
        "grad_x": x.grad.flatten().tolist(),
        "grad_first_weight": first.weight.grad.flatten().tolist(),
        "grad_last_bias": last.bias.grad.flatten().tolist(),
        "running_mean_1": head[1].running_mean.flatten().tolist() if use_bn and layers > 1 else [],
    })
print(json.dumps(cases))
