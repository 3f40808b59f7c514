package retrain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/transforms"
	"github.com/sslight-go/sslight/transforms/source"
)

func TestCompare(t *testing.T) {
	known := map[string]Stamp{
		"a": {URI: "/s/a", Key: "a", Size: 1, MTime: 10},
		"b": {URI: "/s/b", Key: "b", Size: 2, MTime: 10},
		"c": {URI: "/s/c", Key: "c", Size: 3, Generation: 7},
		"d": {URI: "/s/d", Key: "d", Size: 4},
	}
	items := []source.Item{
		{URI: "/s/a", Key: "a", Size: 1, MTime: 10},     // unchanged
		{URI: "/s/b", Key: "b", Size: 2, MTime: 11},     // touched
		{URI: "/s/c", Key: "c", Size: 3, Generation: 8}, // overwritten in GCS
		{URI: "/s/e", Key: "e", Size: 5},                // new
	}
	d := Compare(items, known)
	if len(d.New) != 1 || d.New[0].Key != "e" || len(d.Changed) != 2 || d.Unchanged != 1 ||
		len(d.Removed) != 1 || d.Removed[0] != "d" {
		t.Errorf("diff %+v: want new e, changed b and c, removed d, 1 unchanged", d)
	}
	if !Compare(items[:1], map[string]Stamp{"a": known["a"]}).Empty() {
		t.Error("identical listing is not an empty diff")
	}
}

// photoSource copies n of testdata/photos into an imagenet-layout folder.
func photoSource(t *testing.T, dir string, from, to int) {
	t.Helper()
	names, err := filepath.Glob("../../testdata/photos/*.jpg")
	if err != nil || len(names) < to {
		t.Fatalf("testdata photos: %v (%d)", err, len(names))
	}
	for i := from; i < to; i++ {
		b, err := os.ReadFile(names[i])
		if err != nil {
			t.Fatal(err)
		}
		cls := filepath.Join(dir, fmt.Sprintf("class%d", i%2))
		if err := os.MkdirAll(cls, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cls, filepath.Base(names[i])), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type pretrainCall struct {
	shards   []string
	exclude  map[string]map[string]bool
	initFrom string
}

func TestRetrainRuns(t *testing.T) {
	ctx := context.Background()
	cfg, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("DATA.FORMAT", "imagenet"); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	src, state := filepath.Join(root, "bucket"), filepath.Join(root, "state")
	var calls []pretrainCall
	failNext := false
	opts := Options{Config: cfg, Source: src, State: state, Epochs: 1,
		Pretrain: func(ctx context.Context, shards []string, exclude map[string]map[string]bool, initFrom, out string) (string, error) {
			calls = append(calls, pretrainCall{shards, exclude, initFrom})
			if failNext {
				failNext = false
				return "", errors.New("killed")
			}
			return writeFinalCheckpoint(t, cfg, out, 3), nil
		},
		Evaluate: func(ctx context.Context, ckpt string) (map[string]float64, error) {
			return map[string]float64{"knn_top1": float64(len(calls))}, nil
		},
	}
	manifestItems := func(inc string) int {
		m, err := manifest.Read(ctx, filepath.Join(state, "shards", inc, manifest.FileName))
		if err != nil {
			t.Fatal(err)
		}
		return len(m.Source.Items)
	}

	// Run 1: four new photos.
	photoSource(t, src, 0, 4)
	res, err := Once(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ran || len(res.Diff.New) != 4 || len(calls) != 1 || calls[0].initFrom != "" || len(calls[0].shards) != 1 {
		t.Fatalf("run 1: %+v, calls %+v", res, calls)
	}
	if n := manifestItems("inc-0001"); n != 4 {
		t.Errorf("inc-0001 prepared %d objects, want 4", n)
	}

	// Run 2: nothing new: no work.
	if res, err = Once(ctx, opts); err != nil || res.Ran || len(calls) != 1 {
		t.Fatalf("run with no new data: %+v, %v, %d pretrain calls", res, err, len(calls))
	}

	// Run 3: two photos added; only they are prepared; training continues
	// from run 1's checkpoint over both increments.
	photoSource(t, src, 4, 6)
	if res, err = Once(ctx, opts); err != nil || !res.Ran {
		t.Fatalf("run 3: %+v, %v", res, err)
	}
	if n := manifestItems("inc-0002"); n != 2 {
		t.Errorf("inc-0002 prepared %d objects, want only the 2 new ones", n)
	}
	c := calls[len(calls)-1]
	if len(c.shards) != 2 || c.initFrom != filepath.Join(state, "pretrain", "phase-0001", "checkpoints", "step-00000003") {
		t.Errorf("run 3 pretrain call %+v", c)
	}

	// Run 4: one old photo rewritten (other bytes), and the pre-training
	// "crashes": nothing is committed; the retry prepares nothing again and
	// excludes the old version from inc-0001.
	names, _ := filepath.Glob(filepath.Join(src, "class0", "*.jpg"))
	other, _ := os.ReadFile(filepath.Join("../../testdata/photos", "42_0_wallpapers.jpg"))
	if err := os.WriteFile(names[0], other, 0o644); err != nil {
		t.Fatal(err)
	}
	failNext = true
	if _, err := Once(ctx, opts); err == nil {
		t.Fatal("a failed pre-training did not fail the run")
	}
	st, _ := Load(ctx, state)
	if st.Runs != 2 {
		t.Fatalf("a failed run committed: state has %d runs, want 2", st.Runs)
	}
	if res, err = Once(ctx, opts); err != nil || !res.Ran || len(res.Diff.Changed) != 1 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	if n := manifestItems("inc-0003"); n != 1 {
		t.Errorf("inc-0003 prepared %d objects, want the 1 changed", n)
	}
	c = calls[len(calls)-1]
	rel, _ := filepath.Rel(src, names[0])
	want := transforms.SampleKey(filepath.ToSlash(rel))
	inc1 := filepath.Join(state, "shards", "inc-0001")
	if len(c.shards) != 3 || !c.exclude[inc1][want] || len(c.exclude[inc1]) != 1 {
		t.Errorf("retry pretrain call: shards %v, exclude %v; want 3 roots and %s excluded from inc-0001", c.shards, c.exclude, want)
	}
	hist, err := jsonfile.ReadLines[HistoryEntry](ctx, filepath.Join(state, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[2].Run != 3 || hist[2].Changed != 1 {
		t.Errorf("history %+v: want 3 runs, the last with 1 changed object", hist)
	}
	if _, err := os.Stat(filepath.Join(state, "history.png")); err != nil {
		t.Error(err)
	}
}
