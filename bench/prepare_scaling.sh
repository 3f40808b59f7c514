#!/usr/bin/env bash
# Scaling of the whole `sslight prepare` pipeline from one core to two,
# measured side by side: each round runs the same job pinned to one CPU
# (taskset -c 0, GOMAXPROCS=1: GOMAXPROCS alone does not hold cgo calls to
# one core) and then on both CPUs (GOMAXPROCS=2), and the script prints the
# per-round ratios and their median. The job is the SSLight CNN preset
# (2×224 + 6×128) over the photos in $SSLIGHT_PHOTOS as an ImageNet-layout
# folder, EPOCHS epochs.
#
#   bench/prepare_scaling.sh                  # 15 rounds, 8 epochs, ../shared/photos
#   ROUNDS=5 EPOCHS=4 SSLIGHT_PHOTOS=dir bench/prepare_scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${SSLIGHT_PHOTOS:-../shared/photos}
[ -d "$PHOTOS" ] || PHOTOS=testdata/photos
ROUNDS=${ROUNDS:-15}
EPOCHS=${EPOCHS:-8}
BIN=${BIN:-bin/sslight}
[ -x "$BIN" ] || make build >/dev/null
command -v taskset >/dev/null || { echo "needs taskset (util-linux)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for f in "$PHOTOS"/*.jpg; do
	i=$((i + 1))
	mkdir -p "$tmp/src/c$((i % 4))"
	cp "$f" "$tmp/src/c$((i % 4))/"
done
run() { # cpus-prefix gomaxprocs → wall seconds
	rm -rf "$tmp/out"
	"$@" "$BIN" prepare --config dino_cnn_sslight --format imagenet --source "$tmp/src" --out "$tmp/out" \
		--epochs "$EPOCHS" --quiet | sed -n 's/.*"wall_seconds": \([0-9.]*\).*/\1/p'
}
echo "photos: $PHOTOS ($i), epochs: $EPOCHS, rounds: $ROUNDS, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
	one=$(run taskset -c 0 env GOMAXPROCS=1)
	two=$(run env GOMAXPROCS=2)
	echo "$one $two"
done | awk -v n="$((i * EPOCHS))" '
	{ one[NR] = $1; two[NR] = $2; ratio[NR] = $1 / $2
	  printf "round %2d: 1 core %.2f s (%.0f images/s)  2 cores %.2f s (%.0f images/s)  ratio %.2f\n", NR, $1, n / $1, $2, n / $2, $1 / $2 }
	END {
	  m = NR; for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (ratio[b] < ratio[a]) { t = ratio[a]; ratio[a] = ratio[b]; ratio[b] = t }
	  med = (m % 2) ? ratio[(m + 1) / 2] : (ratio[m / 2] + ratio[m / 2 + 1]) / 2
	  printf "median ratio (2 cores / 1 core): %.2f over %d rounds\n", med, m }'
