#!/usr/bin/env bash
# Speed and memory of sslight's gorgonia backbones against PyTorch 1.13, side
# by side: the same architecture, batch, input size and thread count in
# `sslight bench model` and in bench/backbone_torch.py, each phase (training
# step, inference) in its own process so that each peak RSS is the phase's
# own. The machine is shared, so the two sides alternate within every round
# and each ratio is the median of the per-round ratios (sslight / PyTorch,
# images/s wall clock; images per CPU-second beside it).
#
# Training step = forward in train mode, mean of the pooled embedding,
# backward, plain SGD; inference = eval-mode forward (feature extraction).
#
#   bench/backbone_ratio.sh                       # 3 rounds, 5 timed steps each
#   ROUNDS=1 STEPS=2 bench/backbone_ratio.sh      # about 10 minutes on 2 cores
#   TRAIN="resnet18:96:64" INFER="" bench/backbone_ratio.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-2}
# arch:size:batch, the issue's targets: training at 224 (batch 32) and 96
# (batch 64), inference at 224.
TRAIN=${TRAIN:-resnet18:224:32 mobilenet_v2:224:32 resnet18:96:64 mobilenet_v2:96:64}
INFER=${INFER:-resnet18:224:32 mobilenet_v2:224:32}
PY=${PYTHON:-/usr/bin/python3}
# OpenBLAS's SGEMM when its header and cgo are there: the pure-Go gonum BLAS
# is several times slower.
TAGS=${TAGS:-$( (test -f /usr/include/cblas.h || test -f /usr/include/x86_64-linux-gnu/cblas.h || test -f /usr/include/aarch64-linux-gnu/cblas.h) &&
	go env CGO_ENABLED | grep -q 1 && echo openblas || true)}

"$PY" -c 'import torch, torchvision' || { echo "need $PY with torch and torchvision" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags "$TAGS" -o "$tmp/sslight" ./cmd/sslight

echo "rounds: $ROUNDS, steps: $STEPS (+$WARMUP warm-up), threads: $THREADS each side, go tags: ${TAGS:-none}," \
	"$(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
run_pair() { # mode arch size batch
	local mode=$1 arch=$2 size=$3 batch=$4 key="$1_$2_$3_$4"
	OMP_NUM_THREADS=$THREADS "$PY" bench/backbone_torch.py --arch "$arch" --size "$size" --batch "$batch" \
		--steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --mode "$mode" >>"$tmp/torch_$key.jsonl"
	OPENBLAS_NUM_THREADS=1 "$tmp/sslight" bench model --arch "$arch" --size "$size" --batch "$batch" \
		--steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --mode "$mode" --json >>"$tmp/go_$key.jsonl"
}
for r in $(seq "$ROUNDS"); do
	for c in $TRAIN; do IFS=: read -r arch size batch <<<"$c"; run_pair train "$arch" "$size" "$batch"; done
	for c in $INFER; do IFS=: read -r arch size batch <<<"$c"; run_pair infer "$arch" "$size" "$batch"; done
done

"$PY" - "$tmp" "$TRAIN" "$INFER" <<'PYEOF'
import json, os, statistics, sys
tmp, train, infer = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
med = statistics.median
for mode, configs in (("train", train), ("infer", infer)):
    for c in configs:
        arch, size, batch = c.split(":")
        key = "%s_%s_%s_%s" % (mode, arch, size, batch)
        tv = [json.loads(l) for l in open(os.path.join(tmp, "torch_%s.jsonl" % key))]
        go = [json.loads(l) for l in open(os.path.join(tmp, "go_%s.jsonl" % key))]
        if tv[0]["params"] != go[0]["params"]:
            sys.exit("%s: parameter counts differ: pytorch %d, sslight %d" % (c, tv[0]["params"], go[0]["params"]))
        g = [r[mode] for r in go]
        wall = [a["images_per_s"] / t["images_per_s"] for a, t in zip(g, tv)]
        cpu = [a["images_per_cpu_s"] / t["images_per_cpu_s"] for a, t in zip(g, tv)]
        rss_t, rss_g = med([t["peak_rss_mib"] for t in tv]), med([a["peak_rss_mib"] for a in g])
        print("%-5s %-12s %3s px batch %2s: pytorch %6.1f images/s, sslight %6.1f images/s [%s]"
              % (mode, arch, size, batch, med([t["images_per_s"] for t in tv]), med([a["images_per_s"] for a in g]), go[0]["blas"]))
        print("%-5s %-12s %3s px batch %2s: ratio %.2fx (rounds: %s), cpu-time ratio %.2fx; peak RSS pytorch %.0f MiB, sslight %.0f MiB (%.2fx)"
              % (mode, arch, size, batch, med(wall), " ".join("%.2f" % w for w in wall), med(cpu), rss_t, rss_g, rss_g / rss_t))
PYEOF
