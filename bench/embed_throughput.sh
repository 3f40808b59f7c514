#!/usr/bin/env bash
# sslight embed throughput: the whole command (listing, the Beam feature
# extraction on Prism, reading the parts back, embeddings.npy, keys.txt,
# index.jsonl, and with --nearest the exact neighbour search) on the
# testdata photos, once as they are (8 JPEGs plus the README, a dead
# letter) and once copied COPIES times (so start-up is amortised), with and
# without --nearest. Checkpoints of random weights (bench/onnxbench -mode
# export: BatchNorm statistics away from their initial values) at 224 px;
# images/s = readable images / the command's wall time, median of ROUNDS.
#
#   bench/embed_throughput.sh                       # resnet18 and mobilenet_v2, 3 rounds, 64 copies
#   ARCHS=resnet18 ROUNDS=1 bench/embed_throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
COPIES=${COPIES:-64}
NEAREST=${NEAREST:-10}
ARCHS=${ARCHS:-resnet18 mobilenet_v2}
PY=${PYTHON:-/usr/bin/python3}
TAGS=${TAGS:-$(go env CGO_ENABLED | grep -q 1 && {
	test -f /usr/include/turbojpeg.h && echo -n "turbojpeg "
	(test -f /usr/include/cblas.h || test -f /usr/include/x86_64-linux-gnu/cblas.h) && echo -n openblas
	true
})}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags "$TAGS" -o "$tmp/sslight" ./cmd/sslight
go build -tags "$TAGS" -o "$tmp/onnxbench" ./bench/onnxbench
echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg), go tags: ${TAGS:-none}"

mkdir -p "$tmp/many"
for i in $(seq -w "$COPIES"); do
	for f in testdata/photos/*.jpg; do cp "$f" "$tmp/many/${i}_$(basename "$f")"; done
done

for arch in $ARCHS; do
	"$tmp/onnxbench" -mode export -arch "$arch" -size 224 -dir "$tmp/$arch" >/dev/null
	for src in testdata/photos "$tmp/many"; do
		for nearest in 0 "$NEAREST"; do
			: >"$tmp/times"
			for r in $(seq "$ROUNDS"); do
				rm -rf "$tmp/out"
				"$tmp/sslight" embed --checkpoint "$tmp/$arch" --source "$src" --out "$tmp/out" --nearest "$nearest" --quiet \
					>"$tmp/summary.json" 2>/dev/null
				"$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["samples"], s["total_seconds"], s.get("nearest_seconds", 0))' \
					"$tmp/summary.json" >>"$tmp/times"
			done
			"$PY" - "$arch" "$src" "$nearest" "$tmp/times" <<'PYEOF'
import statistics, sys
arch, src, nearest, path = sys.argv[1:]
rows = [tuple(map(float, l.split())) for l in open(path)]
n = int(rows[0][0])
wall = statistics.median(r[1] for r in rows)
nn = statistics.median(r[2] for r in rows)
name = "testdata/photos" if src.endswith("testdata/photos") else "photos x copies"
print("  %-13s %-16s %5d images  --nearest %-3s %6.2f s  %7.1f images/s  (search %.3f s; rounds %s)" % (
    arch, name, n, nearest, wall, n / wall, nn, " ".join("%.2f" % r[1] for r in rows)))
PYEOF
		done
	done
done
