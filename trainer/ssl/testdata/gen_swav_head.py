# Generates swav_head.json: the reference's SWAVHead (src/sslight/model/swav.py,
# re-typed here: the MLP Linear-[BN]-ReLU-...-Linear, F.normalize, a bias-free
# prototypes linear), with the SwAV trainer's step that L2-normalises the
# prototypes before the forward, in train mode on a small random batch,
# with torch 1.13.
# Run: /usr/bin/python3 gen_swav_head.py > swav_head.json
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


torch.manual_seed(5)
cases = []
for use_bn, layers in ((True, 2), (False, 3), (True, 1)):
    in_dim, hidden, out, k, n = 6, 8, 4, 5, 4
    proj = mlp(in_dim, hidden, out, layers, use_bn)
    protos = nn.Linear(out, k, bias=False)
    with torch.no_grad():
        protos.weight.mul_(3.0)  # far from unit rows, so normalising matters
    weights = {"projection.mlp." + key: v.detach().flatten().tolist()
               for key, v in proj.state_dict().items() if v.dtype == torch.float32}
    weights["prototypes.weight"] = protos.weight.detach().flatten().tolist()
    # The trainer's "normalize the prototypes" step.
    with torch.no_grad():
        w = nn.functional.normalize(protos.weight.data.clone(), dim=1, p=2)
        protos.weight.copy_(w)
    x = torch.randn(n, in_dim, requires_grad=True)
    r_emb = torch.randn(n, out)
    r_scores = torch.randn(n, k)
    emb = nn.functional.normalize(proj(x), dim=1, p=2)
    scores = protos(emb)
    ((emb * r_emb).sum() + (scores * r_scores).sum()).backward()
    first = proj if layers == 1 else proj[0]
    cases.append({
        "use_bn": use_bn, "layers": layers, "dims": [in_dim, hidden, out, k], "n": n,
        "weights": weights,
        "normalized_prototypes": protos.weight.detach().flatten().tolist(),
        "x": x.detach().flatten().tolist(),
        "r_emb": r_emb.flatten().tolist(), "r_scores": r_scores.flatten().tolist(),
        "embedding": emb.detach().flatten().tolist(),
        "scores": scores.detach().flatten().tolist(),
        "grad_x": x.grad.flatten().tolist(),
        "grad_prototypes": protos.weight.grad.flatten().tolist(),
        "grad_first_weight": first.weight.grad.flatten().tolist(),
        "running_mean_1": proj[1].running_mean.flatten().tolist() if use_bn and layers > 1 else [],
    })
print(json.dumps(cases))
