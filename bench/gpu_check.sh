#!/usr/bin/env bash
# The device check of sslight's GPU executor, for a machine with one NVIDIA
# GPU, its driver, and a Python environment with PyTorch and NVIDIA's
# CUDA 13 wheels (cuBLAS, cuDNN 9, NVRTC under site-packages/nvidia/*/lib);
# no Go toolchain and no network needed. Build the binary elsewhere first:
#
#   CGO_ENABLED=0 go build -o bin/gpucheck ./bench/gpucheck
#
# then, on the GPU machine, from the repository root:
#
#   bench/gpu_check.sh                      # about 7 minutes at most
#   PYTHON=/usr/bin/python3 OUT_DIR=/tmp/check bench/gpu_check.sh
#
# Phases, each bounded by `timeout` and by its own budget (it starts no new
# case after it), each failing alone: the device and libraries; every op
# against trainer/nn's CPU kernels on random shapes (cuDNN + cuBLAS,
# sslight's own kernels, cuDNN's BatchNorm); every backbone forward (train
# and eval) and backward against the CPU trainer on the same weights and
# batch; throughput and peak memory of ours and of PyTorch eager fp32 on the
# same GPU. Records go to $OUT_DIR/records.jsonl, each phase's log to
# $OUT_DIR/<phase>.log; the summary table comes last.
set -uo pipefail
cd "$(dirname "$0")/.."

GPUCHECK=${GPUCHECK:-bin/gpucheck}
PY=${PYTHON:-/opt/torch/.venv/bin/python3}
OUT=${OUT_DIR:-$(mktemp -d /tmp/sslight-gpucheck.XXXXXX)}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}
mkdir -p "$OUT"
records=$OUT/records.jsonl
: >"$records"

if [ ! -x "$GPUCHECK" ]; then
	echo "no executable $GPUCHECK: build it with CGO_ENABLED=0 go build -o bin/gpucheck ./bench/gpucheck" >&2
	exit 1
fi

# The CUDA libraries of the Python environment's NVIDIA wheels, unless the
# caller named folders already; the dynamic loader gets them too (cuBLAS
# and cuDNN open their companions by name).
if [ -z "${SSLIGHT_CUDA_LIBS:-}" ] && [ -x "$PY" ]; then
	SSLIGHT_CUDA_LIBS=$("$PY" - <<'PYEOF' 2>/dev/null
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
print(":".join(sorted({d for r in roots for d in glob.glob(os.path.join(r, "*", "lib")) if os.path.isdir(d)})))
PYEOF
)
fi
export SSLIGHT_CUDA_LIBS=${SSLIGHT_CUDA_LIBS:-}
if [ -n "$SSLIGHT_CUDA_LIBS" ]; then
	export LD_LIBRARY_PATH="$SSLIGHT_CUDA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# The kernels compile once (NVRTC), then each phase loads them from here.
export SSLIGHT_KERNEL_CACHE=${SSLIGHT_KERNEL_CACHE:-$OUT/kernels}
echo "records: $records; SSLIGHT_CUDA_LIBS=${SSLIGHT_CUDA_LIBS:-(unset)}" >&2
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null >&2 || true

# phase NAME SECONDS COMMAND...: the command's records appended, its log
# kept; a time-out or a crash becomes an error record and the check goes on.
phase() {
	local name=$1 secs=$2
	shift 2
	echo "== $name (at most ${secs}s)" >&2
	local t0=$SECONDS
	timeout --kill-after=5 "$secs" "$@" >>"$records" 2>"$OUT/$name.log"
	local rc=$?
	case $rc in
	0 | 3) ;; # 3: gpucheck recorded its own error
	124 | 137) echo "{\"phase\":\"error\",\"stage\":\"$name\",\"error\":\"timed out after ${secs}s\"}" >>"$records" ;;
	*) echo "{\"phase\":\"error\",\"stage\":\"$name\",\"error\":\"exit status $rc, see $OUT/$name.log\"}" >>"$records" ;;
	esac
	tail -n 4 "$OUT/$name.log" >&2
	echo "   ($name: $((SECONDS - t0))s, exit $rc)" >&2
}

phase info 40 "$GPUCHECK" -phase info
phase ops 60 "$GPUCHECK" -phase ops -variants cudnn,own,cudnn-bn -budget 50s
phase backbones 120 "$GPUCHECK" -phase backbones -variants cudnn -budget 100s
phase bench 90 "$GPUCHECK" -phase bench -steps "$STEPS" -warmup "$WARMUP" -budget 75s
if [ -x "$PY" ]; then
	phase torch 90 "$PY" bench/gpu_torch.py --steps "$STEPS" --warmup "$WARMUP" --budget 75
else
	echo "{\"phase\":\"error\",\"stage\":\"torch\",\"error\":\"no Python at $PY (set PYTHON)\"}" >>"$records"
fi

echo "== summary (records in $records)" >&2
"$GPUCHECK" -phase report "$records"
