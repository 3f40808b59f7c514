#!/usr/bin/env bash
# Compiles the executor's kernels with a real NVRTC, which needs no GPU:
# fetches Debian's NVRTC (bookworm's non-free libnvrtc11.2, CUDA 11.8)
# into a temporary folder with apt-get download (no system change, no apt
# source added) and runs TestKernelsCompileWithNVRTC against it. With
# NVRTC_DIR set to a folder holding libnvrtc.so.*, that one is used.
#
#   bench/nvrtc_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${NVRTC_DIR:-}
if [ -z "$dir" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/lists/partial" "$tmp/dl"
	echo "deb http://deb.debian.org/debian bookworm non-free" >"$tmp/sources.list"
	o="-oDir::Etc::SourceList=$tmp/sources.list -oDir::Etc::SourceParts=/dev/null -oDir::State::Lists=$tmp/lists"
	apt-get $o update -qq
	(cd "$tmp/dl" && apt-get $o download libnvrtc11.2 libnvrtc-builtins11.8)
	for f in "$tmp"/dl/*.deb; do dpkg -x "$f" "$tmp/root"; done
	dir=$tmp/root/usr/lib/x86_64-linux-gnu
fi
SSLIGHT_CUDA_LIBS=$dir go test -count=1 -run TestKernelsCompileWithNVRTC -v ./trainer/gpu/
