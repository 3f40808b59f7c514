package transforms

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/transforms/source"
)

// BenchmarkBuildShard builds one shard of real photos with the SSLight
// policy (2×224 + 6×128), without Beam: the per-shard work of the prepare
// pipeline. Photos: SSLIGHT_PHOTOS or testdata/photos. Run with -cpu 1,2.
func BenchmarkBuildShard(b *testing.B) {
	dir := os.Getenv("SSLIGHT_PHOTOS")
	if dir == "" {
		dir = "../testdata/photos"
	}
	photos, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if len(photos) == 0 {
		b.Skipf("no photos in %s", dir)
	}
	var items []source.Item
	for _, p := range photos {
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, source.Item{URI: p, Key: filepath.Base(p), Index: -1, Label: 0, Size: st.Size()})
	}
	out := b.TempDir()
	if o := os.Getenv("SSLIGHT_BENCH_OUT"); o != "" {
		out = o
	}
	sb := &ShardBuilder{Out: out, ConfigHash: testHash, Policy: augment.SSLightPolicy(), Workers: workersForBench()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := sb.Build(context.Background(), ShardJob{Epoch: i, Items: items}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "images/s")
}

func workersForBench() int {
	n, _ := strconv.Atoi(os.Getenv("SSLIGHT_BENCH_WORKERS"))
	return n
}
