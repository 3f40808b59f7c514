#!/usr/bin/env bash
# The whole self-supervised training step, sslight against PyTorch 1.13 side
# by side: `sslight bench step` and bench/ssl_step_torch.py run the same
# method, backbone, head, views, loss, LARS and EMA on random views, each in
# its own process (so each peak RSS is its own). Every round runs PyTorch in
# NCHW and in channels-last and sslight, one after the other; a round's
# ratio is sslight / the faster PyTorch layout (images/s, wall clock), and
# the script prints the median of the rounds' ratios, the CPU/wall ratio of
# sslight's steps and both peak RSS.
#
#   bench/ssl_step_ratio.sh                    # every case, 3 rounds of 5 steps
#   ROUNDS=1 STEPS=2 CASES="dino-fmnist" bench/ssl_step_ratio.sh
#
# Cases (name: method, network, views, batch):
#   dino-fmnist        DINO, the dino_fmnist_sslight preset (¼-width ResNet-18, 28 px stem,
#                      2×28 + 6×16, head 512/128/1024), batch 128
#   moco-fmnist        MoCo-v2 with local views, moco_cnn_sslight's head and queue on that
#                      network and views, batch 128
#   dino-r18-96        DINO, dino_cnn_sslight's head, ResNet-18, 2×224 + 6×96, batch 32
#   dino-mnv2-96       the same with MobileNetV2
#   moco-r18-96        MoCo-v2, ResNet-18, 2×224 + 6×96, batch 32
#   moco-mnv2-96       the same with MobileNetV2
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-2}
CASES=${CASES:-dino-fmnist moco-fmnist dino-r18-96 dino-mnv2-96 moco-r18-96 moco-mnv2-96}
PY=${PYTHON:-/usr/bin/python3}
TAGS=${TAGS:-$( (test -f /usr/include/x86_64-linux-gnu/cblas.h || test -f /usr/include/cblas.h) && go env CGO_ENABLED | grep -q 1 && echo openblas || true)}
TAGS="$TAGS $(test -f /usr/include/turbojpeg.h && echo turbojpeg || true)"

FMNIST_NET="--set MODEL.BACKBONE_ARCH=resnet18 --set MODEL.WIDTH=0.25 --set MODEL.SMALL_IMAGE_STEM=true --set MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE=28 --set MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE=16"
TORCH_FMNIST="--arch resnet18 --width 0.25 --small-stem --global-size 28 --local-size 16"
case_args() { # name -> "sslight args|torch args"
	case $1 in
	dino-fmnist) echo "--config dino_fmnist_sslight --batch 128|--method dino $TORCH_FMNIST --batch 128 --head-out 1024 --head-hidden 512 --head-bottleneck 128" ;;
	moco-fmnist) echo "--config moco_cnn_sslight $FMNIST_NET --batch 128|--method moco $TORCH_FMNIST --batch 128" ;;
	dino-r18-96) echo "--config dino_cnn_sslight --set MODEL.BACKBONE_ARCH=resnet18 --set MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE=96 --batch 32|--method dino --arch resnet18 --local-size 96 --batch 32" ;;
	dino-mnv2-96) echo "--config dino_cnn_sslight --set MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE=96 --batch 32|--method dino --arch mobilenet_v2 --local-size 96 --batch 32" ;;
	moco-r18-96) echo "--config moco_cnn_sslight --set MODEL.BACKBONE_ARCH=resnet18 --set MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE=96 --batch 32|--method moco --arch resnet18 --local-size 96 --batch 32" ;;
	moco-mnv2-96) echo "--config moco_cnn_sslight --set MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE=96 --batch 32|--method moco --arch mobilenet_v2 --local-size 96 --batch 32" ;;
	*) echo "unknown case $1" >&2; exit 2 ;;
	esac
}

"$PY" -c 'import torch, torchvision' || { echo "need $PY with torch and torchvision (Debian python3-torch python3-torchvision)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags "$TAGS" -o "$tmp/sslight" ./cmd/sslight

echo "rounds: $ROUNDS, steps: $STEPS (+$WARMUP warm-up), threads: $THREADS each side, go tags:$TAGS," \
	"$(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p')), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
	for c in $CASES; do
		IFS='|' read -r goargs pyargs <<<"$(case_args "$c")"
		for fmt in "" --channels-last; do
			# shellcheck disable=SC2086
			OMP_NUM_THREADS=$THREADS "$PY" bench/ssl_step_torch.py $pyargs --steps "$STEPS" --warmup "$WARMUP" \
				--threads "$THREADS" $fmt >>"$tmp/torch_${c}${fmt:+_cl}.jsonl"
		done
		# shellcheck disable=SC2086
		OPENBLAS_NUM_THREADS=1 "$tmp/sslight" bench step $goargs --steps "$STEPS" --warmup "$WARMUP" \
			--threads "$THREADS" --json >>"$tmp/go_$c.jsonl"
	done
done

"$PY" - "$tmp" "$CASES" <<'PYEOF'
import json, os, statistics, sys
tmp, cases = sys.argv[1], sys.argv[2].split()
med = statistics.median
rd = lambda f: [json.loads(l) for l in open(os.path.join(tmp, f))]
for c in cases:
    nchw, cl, go = rd("torch_%s.jsonl" % c), rd("torch_%s_cl.jsonl" % c), rd("go_%s.jsonl" % c)
    best = [max(a["images_per_s"], b["images_per_s"]) for a, b in zip(nchw, cl)]
    ratio = [g["images_per_s"] / t for g, t in zip(go, best)]
    # the RSS of the faster layout, round by round
    rss_t = med([a["peak_rss_mib"] if a["images_per_s"] >= b["images_per_s"] else b["peak_rss_mib"] for a, b in zip(nchw, cl)])
    rss_g = med([g["peak_rss_mib"] for g in go])
    print("%-13s %s: pytorch %6.1f (NCHW) / %6.1f (channels-last) images/s, sslight %6.1f images/s, CPU/wall %.2f"
          % (c, go[0]["views"], med([a["images_per_s"] for a in nchw]), med([b["images_per_s"] for b in cl]),
             med([g["images_per_s"] for g in go]), med([g["cpu_per_wall"] for g in go])))
    print("%-13s ratio %.2fx vs the faster PyTorch layout (rounds: %s); peak RSS pytorch %.0f MiB, sslight %.0f MiB (%.2fx)"
          % (c, med(ratio), " ".join("%.2f" % x for x in ratio), rss_t, rss_g, rss_g / rss_t))
PYEOF
