#!/usr/bin/env bash
# Checks what of the CUDA path needs no GPU against NVIDIA's real
# libraries: the kernels compile with NVRTC (TestKernelsCompileWithNVRTC:
# an sm_90 CUBIN and compute_80 PTX), and the driver library binds every
# function the runtime calls and reports the missing GPU through cuInit
# (TestOpenOnThisMachine). It fetches Debian's libraries (bookworm
# non-free: NVRTC of CUDA 11.8, the 535 driver's libcuda) into a temporary
# folder with apt-get download — no apt source added, nothing installed —
# unless CUDA_LIBS names folders holding libnvrtc.so.* and libcuda.so.1.
#
#   bench/cuda_nogpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
libs=${CUDA_LIBS:-}
if [ -z "$libs" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/lists/partial" "$tmp/dl"
	echo "deb http://deb.debian.org/debian bookworm non-free" >"$tmp/sources.list"
	o="-oDir::Etc::SourceList=$tmp/sources.list -oDir::Etc::SourceParts=/dev/null -oDir::State::Lists=$tmp/lists"
	apt-get $o update -qq
	(cd "$tmp/dl" && apt-get $o download libnvrtc11.2 libnvrtc-builtins11.8 libcuda1)
	for f in "$tmp"/dl/*.deb; do dpkg -x "$f" "$tmp/root"; done
	libs=$tmp/root/usr/lib/x86_64-linux-gnu:$tmp/root/usr/lib/x86_64-linux-gnu/nvidia/current
fi
export SSLIGHT_CUDA_LIBS=$libs
go test -count=1 -run 'TestKernelsCompileWithNVRTC' -v ./trainer/gpu/
go test -count=1 -run 'TestOpenOnThisMachine' -v ./trainer/cuda/
