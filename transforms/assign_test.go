package transforms

import (
	"fmt"
	"testing"
)

// The expected shards were computed independently with Python:
// sha256(b"sslight/shard/v1\0" + le64(seed) + le64(epoch) + key)[:8] as a
// little-endian integer, modulo the shard count.
func TestShardOfPinned(t *testing.T) {
	for _, tc := range []struct {
		seed   uint64
		epoch  int
		key    string
		shards int
		want   int
	}{
		{0, 0, "n01440764/n01440764_10026.JPEG", 7, 5},
		{42, 3, "train-images-idx3-ubyte.gz#000123", 1000, 75},
		{1, 1, "a", 2, 1},
	} {
		if got := ShardOf(tc.seed, tc.epoch, tc.key, tc.shards); got != tc.want {
			t.Errorf("ShardOf(%d, %d, %q, %d) = %d, want %d", tc.seed, tc.epoch, tc.key, tc.shards, got, tc.want)
		}
	}
}

func TestShardOfSpreadsAndReshufflesPerEpoch(t *testing.T) {
	const n, shards = 8000, 8
	counts := make([]int, shards)
	moved := 0
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("class%03d/img_%05d.JPEG", i%100, i)
		s0 := ShardOf(7, 0, key, shards)
		counts[s0]++
		if ShardOf(7, 1, key, shards) != s0 {
			moved++
		}
	}
	for s, c := range counts {
		// Binomial(8000, 1/8): mean 1000, sd 30; ±15% is 5 sd.
		if c < 850 || c > 1150 {
			t.Errorf("shard %d got %d of %d items, want about %d", s, c, n, n/shards)
		}
	}
	// A fresh shuffle keeps 1/8 of the items in place on average.
	if moved < n*3/4 {
		t.Errorf("only %d of %d items changed shard between epochs: epochs are not reshuffled", moved, n)
	}
}

func TestShardKeyRoundTrip(t *testing.T) {
	for _, tc := range []struct{ epoch, index int }{{0, 0}, {3, 17}, {199, 123456}} {
		k := ShardKey(tc.epoch, tc.index)
		e, i, err := ParseShardKey(k)
		if err != nil || e != tc.epoch || i != tc.index {
			t.Errorf("ParseShardKey(%q) = %d, %d, %v; want %d, %d", k, e, i, err, tc.epoch, tc.index)
		}
	}
	for _, bad := range []string{"", "e1-s2", "x00001-s000002", "e00001-s000002x", "e00001s000002"} {
		if _, _, err := ParseShardKey(bad); err == nil {
			t.Errorf("ParseShardKey(%q) accepted a malformed key", bad)
		}
	}
}

func TestShardsPerEpoch(t *testing.T) {
	for _, tc := range []struct {
		items         int
		sample, shard int64
		want          int
	}{
		{0, 100, 1000, 1},
		{10, 100, 1000, 1},
		{11, 100, 1000, 2},
		{1000, 600_000, 256 << 20, 3}, // 447 samples fit in 256 MiB
		{5, 2000, 1000, 5},            // a sample larger than a shard: one per shard
	} {
		if got := ShardsPerEpoch(tc.items, tc.sample, tc.shard); got != tc.want {
			t.Errorf("ShardsPerEpoch(%d, %d, %d) = %d, want %d", tc.items, tc.sample, tc.shard, got, tc.want)
		}
	}
}

func TestSampleKey(t *testing.T) {
	// sha256("n01440764/n01440764_10026.JPEG")[:4] = 93d7fd19 (Python hashlib).
	if got, want := SampleKey("n01440764/n01440764_10026.JPEG"), "n01440764_n01440764_10026_JPEG-93d7fd19"; got != want {
		t.Errorf("SampleKey = %q, want %q", got, want)
	}
	a, b := SampleKey("x/a.b"), SampleKey("x/a_b")
	if a == b {
		t.Errorf("keys that sanitise alike collide: %q", a)
	}
	long := SampleKey(fmt.Sprintf("%0300d", 0))
	if len(long) > 100 {
		t.Errorf("SampleKey of a 300-byte key is %d bytes long", len(long))
	}
	for _, k := range []string{a, b, long, SampleKey("ünïcode/ïmage 1.png")} {
		for _, r := range k {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				t.Errorf("SampleKey produced %q with %q: WebDataset keys must not hold dots, slashes or spaces", k, r)
			}
		}
	}
}
