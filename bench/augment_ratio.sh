#!/usr/bin/env bash
# Throughput of sslight's multi-crop augmentation against the torchvision 0.14
# + PIL 9.4 reference pipeline, per core, measured side by side: for each
# local crop size (96 = DINO baseline policy, 128 = SSLight policy) the two
# implementations run alternately ROUNDS times on the same photos, each on
# one core (GOMAXPROCS=1, torch.set_num_threads(1)), decode included. The
# machine is shared, so the rounds are interleaved and the ratio reported is
# the median of the per-round ratios (wall clock), with CPU-time ratios beside.
#
#   bench/augment_ratio.sh                        # /work/shared/photos or testdata/photos
#   SSLIGHT_PHOTOS=dir ROUNDS=5 bench/augment_ratio.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PHOTOS=${SSLIGHT_PHOTOS:-/work/shared/photos}
[ -d "$PHOTOS" ] || PHOTOS=testdata/photos
ROUNDS=${ROUNDS:-3}
PY=${PYTHON:-/usr/bin/python3}
NPHOTOS=$(ls "$PHOTOS"/*.jpg | wc -l)
# Each side runs for roughly two seconds a round.
PY_IMAGES=${PY_IMAGES:-$NPHOTOS}
GO_IMAGES=${GO_IMAGES:-$((NPHOTOS * 5))}
# libjpeg-turbo decoding when its header and cgo are there (as the Makefile does).
TAGS=${TAGS:-$(test -f /usr/include/turbojpeg.h && go env CGO_ENABLED | grep -q 1 && echo turbojpeg || true)}

"$PY" -c 'import torch, torchvision, PIL' || { echo "need $PY with torch, torchvision and PIL" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags "$TAGS" -o "$tmp/augmentbench" ./bench/augmentbench

echo "photos: $PHOTOS ($NPHOTOS), rounds: $ROUNDS, go tags: ${TAGS:-none}, $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for size in 96 128; do
	for r in $(seq "$ROUNDS"); do
		"$PY" bench/augment_torchvision.py --dir "$PHOTOS" --local-size "$size" --images "$PY_IMAGES" >>"$tmp/tv_$size.jsonl"
		GOMAXPROCS=1 "$tmp/augmentbench" -dir "$PHOTOS" -local-size "$size" -images "$GO_IMAGES" >>"$tmp/go_$size.jsonl"
	done
done

"$PY" - "$tmp" <<'PYEOF'
import json, statistics, sys, os
tmp = sys.argv[1]
for size in (96, 128):
    tv = [json.loads(l) for l in open(os.path.join(tmp, "tv_%d.jsonl" % size))]
    go = [json.loads(l) for l in open(os.path.join(tmp, "go_%d.jsonl" % size))]
    wall = [g["images_per_s"] / t["images_per_s"] for t, g in zip(tv, go)]
    cpu = [g["images_per_cpu_s"] / t["images_per_cpu_s"] for t, g in zip(tv, go)]
    med = lambda xs: statistics.median(xs)
    print("local %d: torchvision %.1f images/s (cpu %.1f), sslight-go %.1f images/s (cpu %.1f) [%s kernels, %s jpeg]"
          % (size, med([t["images_per_s"] for t in tv]), med([t["images_per_cpu_s"] for t in tv]),
             med([g["images_per_s"] for g in go]), med([g["images_per_cpu_s"] for g in go]), go[0]["kernels"], go[0]["jpeg"]))
    print("local %d: ratio %.2fx (rounds: %s), cpu-time ratio %.2fx"
          % (size, med(wall), " ".join("%.2f" % w for w in wall), med(cpu)))
PYEOF
