package run

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/configs"
)

const fmnistMini = "../../testdata/fmnist-mini"

// tinyConfig is the Fashion-MNIST SSLight preset shrunk so that one epoch
// over fmnist-mini's 200 images takes seconds.
func tinyConfig(t *testing.T) *configs.Config {
	t.Helper()
	cfg, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"MODEL.WIDTH": "0.125", "DINOHead.HIDDEN_SIZE": "32", "DINOHead.BOTTLENECK_DIM": "16", "DINOHead.OUTPUT_DIM": "64",
		"SOLVER.WARMUP_ITERS": "1", "DINO.WARMUP_TEACHER_TEMP_ITERS": "2", "SOLVER.FREEZE_LAST_LAYER_ITERS": "1", "SOLVER.TOTAL_EPOCHS": "1"} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// TestRunNoEval prepares and pre-trains one config and checks the run
// directory: the stage records (also in stages.json), the loss plot, the
// shards and the checkpoint, and no report.
func TestRunNoEval(t *testing.T) {
	out := t.TempDir()
	sum, err := Run(context.Background(), Options{Configs: []Config{{Name: "tiny", Config: tinyConfig(t)}}, Source: fmnistMini, Out: out, BatchSize: 32, NoEval: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Report != nil || sum.Dir != filepath.Join(out, sum.RunID) || len(sum.Stages) != 2 ||
		sum.Stages[0].Stage != "prepare tiny" || !strings.HasPrefix(sum.Stages[0].Detail, "1 epochs of views, 200 samples, ") ||
		sum.Stages[1].Stage != "pretrain tiny" || !strings.HasPrefix(sum.Stages[1].Detail, "1 epochs × 6 it, batch 32, ") {
		t.Errorf("summary %+v", sum)
	}
	for _, s := range sum.Stages {
		if s.Seconds <= 0 {
			t.Errorf("stage %s took %v s", s.Stage, s.Seconds)
		}
	}
	for _, f := range []string{"loss.png", "tiny/shards/manifest.json", "tiny/pretrain/metrics.jsonl", "tiny/pretrain/checkpoints"} {
		if _, err := os.Stat(filepath.Join(sum.Dir, f)); err != nil {
			t.Error(err)
		}
	}
	for _, f := range []string{"metrics.json", "eval"} {
		if _, err := os.Stat(filepath.Join(sum.Dir, f)); !os.IsNotExist(err) {
			t.Errorf("a run without evaluation wrote %s (%v)", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(sum.Dir, "stages.json"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []Stage
	if err := json.Unmarshal(b, &stages); err != nil || len(stages) != 2 || stages[1] != sum.Stages[1] {
		t.Errorf("stages.json %s (%v)", b, err)
	}
}

// TestRunChecksFirst: bad options fail before a run directory exists.
func TestRunChecksFirst(t *testing.T) {
	cfg := []Config{{Name: "tiny", Config: tinyConfig(t)}}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Source: fmnistMini, NoEval: true}, "no config"},
		{Options{Configs: cfg, NoEval: true}, "no source"},
		{Options{Configs: cfg, Source: fmnistMini}, "no validation source"},
		{Options{Configs: cfg, Source: fmnistMini, EvalVal: fmnistMini, Protocols: []string{"knn", "linaer"}}, `unknown protocol "linaer"`},
	} {
		tc.o.Out = filepath.Join(t.TempDir(), "runs")
		if _, err := Run(context.Background(), tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.o, err, tc.want)
		}
		if _, err := os.Stat(tc.o.Out); !os.IsNotExist(err) {
			t.Errorf("%+v: %s written before the error (%v)", tc.o, tc.o.Out, err)
		}
	}
}

func TestWriteStages(t *testing.T) {
	var b bytes.Buffer
	if err := WriteStages(&b, []Stage{{Stage: "prepare a", Seconds: 1.26, PeakRSSMB: 120.4, Detail: "2 epochs of views"}, {Stage: "eval", Seconds: 62, PeakRSSMB: 900}}); err != nil {
		t.Fatal(err)
	}
	want := "stage      wall  peak RSS  detail\n" +
		"prepare a  1.3s  120 MiB   2 epochs of views\n" +
		"eval       1m2s  900 MiB   \n" +
		"total      1m3s            \n"
	if b.String() != want {
		t.Errorf("table:\n%q\nwant:\n%q", b.String(), want)
	}
}

func TestUploadTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, f := range []string{"a/x.png", "a/b/y.png", "z.txt"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n, err := UploadTree(context.Background(), src, dst+"/copy")
	if err != nil || n != 3 {
		t.Fatalf("copied %d files (%v), want 3", n, err)
	}
	for _, f := range []string{"a/x.png", "a/b/y.png", "z.txt"} {
		if b, err := os.ReadFile(filepath.Join(dst, "copy", f)); err != nil || string(b) != f {
			t.Errorf("%s: %q (%v)", f, b, err)
		}
	}
	if _, err := UploadTree(context.Background(), filepath.Join(src, "missing"), dst); err == nil {
		t.Error("a missing folder: no error")
	}
}
