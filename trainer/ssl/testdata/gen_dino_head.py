# Generates dino_head.json: the reference's DINOHead (src/sslight/model/dino.py,
# re-typed here: Linear-BN-GELU-Linear-BN-GELU-Linear, F.normalize, weight-norm
# last layer) in train mode on a small random batch, with torch 1.13.
# Run: /usr/bin/python3 gen_dino_head.py > dino_head.json
import json
import torch
import torch.nn as nn

torch.manual_seed(3)
cases = []
for use_bn, norm_last in ((True, True), (False, False)):
    in_dim, hidden, bott, out, n = 6, 8, 4, 5, 4
    layers = [nn.Linear(in_dim, hidden)]
    if use_bn:
        layers.append(nn.BatchNorm1d(hidden))
    layers.append(nn.GELU())
    layers.append(nn.Linear(hidden, hidden))
    if use_bn:
        layers.append(nn.BatchNorm1d(hidden))
    layers.append(nn.GELU())
    layers.append(nn.Linear(hidden, bott))
    mlp = nn.Sequential(*layers)
    last = nn.utils.weight_norm(nn.Linear(bott, out, bias=False))
    with torch.no_grad():
        last.weight_g.uniform_(0.5, 1.5)
    x = torch.randn(n, in_dim, requires_grad=True)
    r = torch.randn(n, out)
    state = {k: v.detach().clone() for k, v in mlp.state_dict().items()}
    y = last(nn.functional.normalize(mlp(x), dim=-1, p=2))
    (y * r).sum().backward()
    cases.append({
        "use_bn": use_bn, "norm_last_layer": norm_last,
        "dims": [in_dim, hidden, bott, out], "n": n,
        "weights": {**{"mlp." + k: v.flatten().tolist() for k, v in state.items() if v.dtype == torch.float32},
                    "last_layer.weight_g": last.weight_g.detach().flatten().tolist(),
                    "last_layer.weight_v": last.weight_v.detach().flatten().tolist()},
        "x": x.detach().flatten().tolist(), "r": r.flatten().tolist(),
        "y": y.detach().flatten().tolist(),
        "grad_x": x.grad.flatten().tolist(),
        "grad_v": last.weight_v.grad.flatten().tolist(),
        "grad_g": last.weight_g.grad.flatten().tolist(),
        "grad_mlp0_weight": mlp[0].weight.grad.flatten().tolist(),
        "running_mean_1": mlp[1].running_mean.flatten().tolist() if use_bn else [],
    })
print(json.dumps(cases))
