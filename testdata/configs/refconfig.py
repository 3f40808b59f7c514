#!/usr/bin/env python3
"""Independent expectations for the Go package configs.

This re-implements, in Python and without any sslight code, what the SSLight
reference does with a config (fvcore/yacs CfgNode.merge_from_file: PyYAML load,
then a recursive merge that refuses unknown keys and any change of type except
list<->tuple), and writes the canonical JSON that configs.CanonicalJSON
promises (sorted keys, no whitespace, numbers as ES6 Number#toString).

  python3 refconfig.py gen DEFAULTS_PY OUT_JSON YAML...
      Executes the reference's src/config/defaults.py (DEFAULTS_PY) with a stub
      CfgNode, adds the sslight extension keys at their documented defaults,
      and writes OUT_JSON: the defaults (as typed JSON) and, for the defaults
      and for every YAML, the canonical JSON, its sha256 and the augmentation
      hash. Run by hand when the reference or the schema changes; needs PyYAML.

  python3 refconfig.py canon EXPECTED_JSON YAML...
      Merges each YAML onto the defaults stored in EXPECTED_JSON with the
      reference's rules and prints its canonical JSON, one line per YAML
      (or "ERROR <message>" on that line when the loader refuses it). Used by the Go tests
      (when python3 and PyYAML are installed) to check that every preset and
      everything Config.YAML writes loads in the reference's loader with the
      same values and types.
"""
import decimal
import hashlib
import json
import math
import sys
import types

import yaml

# sslight extension keys and their defaults, as specified in the issue (not
# read from the Go code).
EXTENSIONS = {
    "DATA": {"PIXEL_LIMIT": 178956970, "SHARD_SIZE_MB": 256, "FORMAT": "imagenet"},
    "MODEL": {"WIDTH": 1.0, "SMALL_IMAGE_STEM": False},
    "DINO": {"WARMUP_TEACHER_TEMP_ITERS": 0},
    "SOLVER": {"WARMUP_ITERS": 0, "FREEZE_LAST_LAYER_ITERS": 0},
}

# What decides the prepared crops (see configs.AugmentationHash).
AUGMENTATION_EXCLUDED = {"LAMBDAS", "CROPS_FOR_ASSIGN"}


class CfgNode(dict):
    """Just enough of fvcore's CfgNode to execute defaults.py."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    def __setattr__(self, name, value):
        self[name] = value


def load_defaults(path):
    fv = types.ModuleType("fvcore")
    fv.common = types.ModuleType("fvcore.common")
    fv.common.config = types.ModuleType("fvcore.common.config")
    fv.common.config.CfgNode = CfgNode
    sys.modules.update({"fvcore": fv, "fvcore.common": fv.common, "fvcore.common.config": fv.common.config})
    scope = {}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), scope)
    cfg = to_plain(scope["_C"])
    for section, keys in EXTENSIONS.items():
        for k, v in keys.items():
            assert k not in cfg[section], f"{section}.{k} is no longer an extension"
            cfg[section][k] = v
    return cfg


def to_plain(node):
    if isinstance(node, dict):
        return {k: to_plain(v) for k, v in node.items()}
    if isinstance(node, tuple):
        return list(node)
    return node


def merge(dst, src, prefix=""):
    """yacs _merge_a_into_b: unknown keys and type changes are errors."""
    for k, v in src.items():
        full = prefix + k
        if k not in dst:
            raise KeyError(f"Non-existent config key: {full}")
        old = dst[k]
        if isinstance(old, dict):
            if not isinstance(v, dict):
                raise ValueError(f"{full}: section replaced by {v!r}")
            merge(old, v, full + ".")
            continue
        if isinstance(v, tuple):
            v = list(v)
        if type(v) is not type(old):
            raise ValueError(f"Type mismatch ({type(old)} vs. {type(v)}) with values ({old} vs. {v}) for config key: {full}")
        dst[k] = v


def es6_number(x):
    """Number.prototype.toString for a finite float, -0 as 0."""
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest digits that round-trip, like ES6 requires.
    t = decimal.Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0") or "0"
    # value = 0.digits * 10^n  (ES6's s * 10^(n-k) with k = len(digits))
    n = len("".join(map(str, t.digits))) + t.exponent
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    es = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return sign + digits + "e" + es
    return sign + digits[0] + "." + digits[1:] + "e" + es


def canonical(v):
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + canonical(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        assert math.isfinite(v)
        return es6_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    raise TypeError(f"unexpected {type(v)}: {v!r}")


def augmentation(cfg):
    mv = {k: v for k, v in cfg["MULTI_VIEWS_TRANSFORMS"].items() if k not in AUGMENTATION_EXCLUDED}
    return {"MULTI_VIEWS_TRANSFORMS": mv, "SEED": cfg["SEED"]}


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def entry(cfg):
    c = canonical(cfg)
    return {"canonical": c, "sha256": sha(c), "augmentation_sha256": sha(canonical(augmentation(cfg)))}


def merged(defaults, yaml_path):
    import copy

    cfg = copy.deepcopy(defaults)
    with open(yaml_path) as f:
        merge(cfg, yaml.safe_load(f) or {})
    return cfg


def main(argv):
    if len(argv) >= 3 and argv[0] == "gen":
        defaults = load_defaults(argv[1])
        out = {"defaults": defaults, "cases": {"<defaults>": entry(defaults)}}
        for p in argv[3:]:
            name = "/".join(p.split("/")[-2:])
            out["cases"][name] = entry(merged(defaults, p))
        with open(argv[2], "w") as f:
            json.dump(out, f, indent=1, sort_keys=True)
            f.write("\n")
        return 0
    if len(argv) >= 3 and argv[0] == "canon":
        with open(argv[1]) as f:
            defaults = json.load(f)["defaults"]
        for p in argv[2:]:
            try:
                line = canonical(merged(defaults, p))
            except Exception as e:  # report per file, keep going
                line = "ERROR " + " ".join(f"{type(e).__name__}: {e}".split())
            sys.stdout.write(line + "\n")
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
