#!/usr/bin/env bash
# ONNX export figures: export time and file size per architecture
# (bench/onnxbench -mode export: trainer/export, BatchNorm folded, dynamic
# batch), and inference throughput of the exported models in OpenCV's DNN
# module (bench/onnx_opencv.py, cv2.setNumThreads(1)) next to sslight's own
# inference on the same images (bench/onnxbench -mode infer: trainer/features,
# GOMAXPROCS=1, OPENBLAS_NUM_THREADS=1). The machine may be shared, so the two
# sides alternate within every round and the ratio is the median of the
# per-round ratios (OpenCV / sslight, images/s wall clock; images per
# CPU-second beside it).
#
#   bench/onnx_ratio.sh                                  # 3 rounds, 5 timed passes of 8 images each
#   ROUNDS=1 REPS=2 EXPORTS="" bench/onnx_ratio.sh       # inference only, quick
#   INFER="resnet18:224 mobilenet_v2:224" bench/onnx_ratio.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REPS=${REPS:-5}
IMAGES=${IMAGES:-8}
PY=${PYTHON:-/usr/bin/python3}
PHOTOS=${SSLIGHT_PHOTOS:-testdata/photos}
# arch:size[:width:small_image_stem:patch]
EXPORTS=${EXPORTS-resnet18:224 resnet34:224 resnet50:224 mobilenet_v2:224 resnet18:32:0.25:true mobilenet_v2:32:0.5:true vit_tiny:224::false:16 vit_tiny:224::false:32 vit_small:224::false:16}
INFER=${INFER:-resnet18:224 mobilenet_v2:224}
TAGS=${TAGS:-$( (test -f /usr/include/cblas.h || test -f /usr/include/x86_64-linux-gnu/cblas.h || test -f /usr/include/aarch64-linux-gnu/cblas.h) &&
	go env CGO_ENABLED | grep -q 1 && echo openblas || true)}

"$PY" -c 'import cv2, numpy' || { echo "need $PY with cv2 (python3-opencv) and numpy" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags "$TAGS" -o "$tmp/onnxbench" ./bench/onnxbench

echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg), go tags: ${TAGS:-none}," \
	"OpenCV $("$PY" -c 'import cv2; print(cv2.__version__)')"
export_one() { # arch size width stem patch dir
	"$tmp/onnxbench" -mode export -arch "$1" -size "$2" -width "${3:-1}" -small-image-stem="${4:-false}" -patch "${5:-16}" \
		-dir "$6" -photos "$PHOTOS" -images "$IMAGES"
}
if [ -n "$EXPORTS" ]; then
	echo "export (one process each, BatchNorm folded, dynamic batch):"
	for c in $EXPORTS; do
		IFS=: read -r arch size width stem patch <<<"$c"
		d="$tmp/export"; rm -rf "$d"
		export_one "$arch" "$size" "$width" "$stem" "$patch" "$d" |
			"$PY" -c 'import json,sys; r=json.load(sys.stdin); print("  %-40s %4d px: %6.2f s, %7.1f MB, %4d nodes, %5.2f M params" % (r["arch"], r["size"], r["export_s"], r["bytes"]/1e6, r["nodes"], r["params"]/1e6))'
	done
fi
for c in $INFER; do
	IFS=: read -r arch size <<<"$c"
	d="$tmp/infer_${arch}_$size"
	export_one "$arch" "$size" 1 false 16 "$d" >/dev/null
	for r in $(seq "$ROUNDS"); do
		OPENCV_NUM_THREADS=1 OMP_NUM_THREADS=1 "$PY" bench/onnx_opencv.py "$d" --reps "$REPS" >>"$d/opencv.jsonl"
		GOMAXPROCS=1 OPENBLAS_NUM_THREADS=1 "$tmp/onnxbench" -mode infer -dir "$d" -reps "$REPS" >>"$d/sslight.jsonl"
	done
	"$PY" - "$d" "$arch" "$size" "$IMAGES" <<'PYEOF'
import json, statistics, sys
d, arch, size, n = sys.argv[1:]
cv = [json.loads(l) for l in open(d + "/opencv.jsonl")]
go = [json.loads(l) for l in open(d + "/sslight.jsonl")]
med = statistics.median
wall = [c["images_per_s"] / g["images_per_s"] for c, g in zip(cv, go)]
cpu = [c["images_per_cpu_s"] / g["images_per_cpu_s"] for c, g in zip(cv, go)]
print("infer %-12s %3s px batch %s, 1 thread: OpenCV %6.2f images/s, sslight %6.2f images/s; ratio OpenCV/sslight %.2fx (rounds: %s), cpu-time ratio %.2fx"
      % (arch, size, n, med([c["images_per_s"] for c in cv]), med([g["images_per_s"] for g in go]), med(wall),
         " ".join("%.2f" % w for w in wall), med(cpu)))
PYEOF
done
