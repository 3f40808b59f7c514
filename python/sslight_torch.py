"""Load an sslight backbone into PyTorch in one line.

    from sslight_torch import load
    model = load("runs/x/pretrain/checkpoints/step-00000780")  # or runs/x/pretrain (its newest checkpoint)
    emb = model(x)  # x: [N, 3, H, W] float32, normalised as sslight's evaluation (DATA.MEAN / DATA.STD)
    teacher = load("runs/x/pretrain", weights="teacher")  # DINO's EMA teacher, MoCo's key encoder

load() reads the checkpoint's meta.json (arch, width, small_image_stem,
patch_size), builds the matching torch module -- torchvision's ResNet-18/34/50
with sslight's scaled widths (round(64 * width) * 2**i) and small-image stem
(3x3 stride-1 conv1, no max-pool), torchvision's mobilenet_v2(width_mult) with
a stride-1 first convolution for the small stem, or DINO's ViT-Tiny/Small with
patch 16 or 32 written here in plain torch under timm's names -- loads
backbone.safetensors into it with load_state_dict(strict=True) and returns it in
eval mode. Its forward returns sslight's embedding: the global average of the
last feature map (CNNs), the final-norm class token (ViTs), [N, D].

weights="teacher" loads the checkpoint's teacher instead of its student:
teacher_backbone.safetensors, or, in checkpoints written before that file, the
teacher.backbone.* (DINO) / key.backbone.* (MoCo) entries of
checkpoint.safetensors; a SwAV checkpoint has no teacher.

load() also takes a file written by `sslight export --format safetensors`
(whose __metadata__ names the architecture); tensors under "head." (written with
--with-head) are left out of the strict load and returned by read_safetensors.

Needs torch and torchvision only (Debian: python3-torch, python3-torchvision).
"""
import glob
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import mobilenet_v2, resnet

__all__ = ["load", "build", "read_safetensors"]

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
           "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) of a .safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=_DTYPES[e["dtype"]]) if end > begin else \
            torch.empty(0, dtype=_DTYPES[e["dtype"]])
        tensors[name] = t.reshape(e["shape"])
    return tensors, meta


def _round(x):
    return int(math.floor(x + 0.5))  # Go's math.Round: halves away from zero


class _ResNet(resnet.ResNet):
    """torchvision's ResNet with stage widths round(64*width)*2**i and, for
    small images, a 3x3 stride-1 conv1 without max-pool; no classifier."""

    def __init__(self, block, layers, width=1.0, small_image_stem=False):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        base = max(1, _round(64 * width))
        self.inplanes, self.dilation, self.groups, self.base_width = base, 1, 1, 64
        if small_image_stem:
            self.conv1 = nn.Conv2d(3, base, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, base * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, base * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, base * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()


class _Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class _MLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _MLP(dim, dim * mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.patch_size = patch
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    """DINO's VisionTransformer without a head (timm's tensor names): the
    forward returns the final-norm class token, with the position
    embeddings interpolated as DINO's interpolate_pos_encoding for inputs
    other than the 224-pixel training grid."""

    def __init__(self, dim, depth, heads, patch, mlp_ratio=4):
        super().__init__()
        grid = 224 // patch
        self.patch_embed = _PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.blocks = nn.ModuleList([_Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def interpolate_pos_encoding(self, rows, cols):
        n = self.pos_embed.shape[1] - 1
        side = int(math.sqrt(n))
        if rows * cols == n and rows == cols:
            return self.pos_embed
        dim = self.pos_embed.shape[-1]
        grid = self.pos_embed[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((rows + 0.1) / side, (cols + 0.1) / side), mode="bicubic")
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((self.pos_embed[:, :1], grid), dim=1)

    def forward(self, x):
        p = self.patch_embed.patch_size
        rows, cols = x.shape[2] // p, x.shape[3] // p
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(rows, cols)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


_VIT = {"vit_tiny": (192, 12, 3), "vit_small": (384, 12, 6)}
_RESNET = {"resnet18": (resnet.BasicBlock, [2, 2, 2, 2]), "resnet34": (resnet.BasicBlock, [3, 4, 6, 3]),
           "resnet50": (resnet.Bottleneck, [3, 4, 6, 3])}


def build(arch, width=1.0, small_image_stem=False, patch_size=16):
    """The torch module for an sslight architecture (random weights)."""
    width = float(width or 1.0)
    if arch in _RESNET:
        block, layers = _RESNET[arch]
        return _ResNet(block, layers, width, small_image_stem)
    if arch == "mobilenet_v2":
        m = mobilenet_v2(width_mult=width)
        if small_image_stem:
            m.features[0][0].stride = (1, 1)
        m.classifier = nn.Identity()
        return m
    if arch in _VIT:
        if width != 1.0 or small_image_stem:
            raise ValueError("%s: width and small_image_stem apply to CNNs only" % arch)
        dim, depth, heads = _VIT[arch]
        return ViT(dim, depth, heads, int(patch_size or 16))
    raise ValueError("unknown sslight architecture %r (have %s)" % (arch, ", ".join(sorted(list(_RESNET) + ["mobilenet_v2"] + list(_VIT)))))


def _checkpoint_dir(path):
    if os.path.exists(os.path.join(path, "meta.json")):
        return path
    metas = sorted(glob.glob(os.path.join(path, "checkpoints", "step-*", "meta.json")))
    if not metas:
        raise FileNotFoundError("%s: no meta.json there nor in checkpoints/step-*/: pass a checkpoint folder, "
                                "a pretrain --out or an exported .safetensors file" % path)
    return os.path.dirname(metas[-1])


# Where a method's second network lives in checkpoint.safetensors.
_TEACHER_PREFIX = {"DINO": "teacher.", "MOCO": "key."}


def _teacher_tensors(d, meta):
    prefix = _TEACHER_PREFIX.get(meta.get("method"))
    if prefix is None:
        raise ValueError("%s: a %s checkpoint trains one network and has no teacher: load its student"
                         % (d, meta.get("method")))
    path = os.path.join(d, "teacher_backbone.safetensors")
    if os.path.exists(path):
        return read_safetensors(path)[0]
    state, _ = read_safetensors(os.path.join(d, "checkpoint.safetensors"))
    pre = prefix + "backbone."
    tensors = {k[len(pre):]: v for k, v in state.items() if k.startswith(pre)}
    if not tensors:
        raise ValueError("%s: no teacher_backbone.safetensors and no %s* in checkpoint.safetensors" % (d, pre))
    return tensors


def load(path, weights="student"):
    """The backbone of a checkpoint folder, a pretrain --out folder (its newest
    checkpoint) or an exported .safetensors file, loaded strictly, in eval mode.
    weights="teacher" takes a checkpoint's teacher (DINO's EMA teacher, MoCo's key
    encoder) instead of its student."""
    if weights not in ("student", "teacher"):
        raise ValueError("weights %r: want 'student' or 'teacher'" % (weights,))
    if os.path.isdir(path):
        d = _checkpoint_dir(path)
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
        if weights == "teacher":
            tensors = _teacher_tensors(d, meta)
        else:
            tensors, _ = read_safetensors(os.path.join(d, "backbone.safetensors"))
    else:
        tensors, meta = read_safetensors(path)
        if "arch" not in meta:
            raise ValueError("%s: no arch in its metadata: not an sslight export" % path)
        if weights != "student":
            raise ValueError("%s: an exported file holds one network (its metadata says which): "
                             "pass weights only with a checkpoint folder" % path)
        meta = dict(meta, width=float(meta.get("width", 1)), small_image_stem=meta.get("small_image_stem") == "true",
                    patch_size=int(meta.get("patch_size", 16)))
    model = build(meta["arch"], meta.get("width", 1.0), meta.get("small_image_stem", False), meta.get("patch_size", 16))
    state = {k: v for k, v in tensors.items() if not k.startswith("head.")}
    model.load_state_dict(state, strict=True)
    return model.eval()
