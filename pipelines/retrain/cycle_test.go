package retrain

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer"
	"github.com/sslight-go/sslight/trainer/eval"
)

// This file holds what the tests of whole retrain cycles share: a tiny
// config, the trainer and the evaluation wired in as `sslight retrain`
// wires them, and the comparison of two states.

// tinyCycleConfig is the Fashion-MNIST SSLight preset on an imagenet
// layout, shrunk so a cycle of prepare, two pre-training epochs with a
// checkpoint after each, and the kNN and linear evaluation takes about a
// second: an eighth-width ResNet-18 on 16 px global and 8 px local views.
func tinyCycleConfig(t testing.TB) *configs.Config {
	t.Helper()
	cfg, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"DATA.FORMAT": "imagenet",
		"MODEL.WIDTH": "0.125",
		"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE":   "16",
		"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE":    "8",
		"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_NUMBER": "2",
		"MULTI_VIEWS_TRANSFORMS.NMB_CROPS":          "[2, 2]",
		"DINOHead.HIDDEN_SIZE":                      "32",
		"DINOHead.BOTTLENECK_DIM":                   "16",
		"DINOHead.OUTPUT_DIM":                       "64",
		"TRAIN.BATCH_SIZE":                          "2",
		"SOLVER.TOTAL_EPOCHS":                       "2",
		"SOLVER.WARMUP_ITERS":                       "1",
		"SOLVER.FREEZE_LAST_LAYER_ITERS":            "1",
		"DINO.WARMUP_TEACHER_TEMP_ITERS":            "2",
		"TRAIN.CHECKPOINT_PERIOD":                   "1",
		"LOG_STEP":                                  "1",
	} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// cycleOptions are the Options `sslight retrain` builds (cmd/sslight
// retrain.go): the trainer with --resume into the phase's output, and the
// kNN and fast linear evaluation of every new checkpoint on labelled
// data (the source's own class folders).
func cycleOptions(cfg *configs.Config, src, state string) Options {
	o := Options{Config: cfg, Source: src, State: state, Epochs: 1,
		Pretrain: func(ctx context.Context, shards []string, exclude map[string]map[string]bool, initFrom, out string) (string, error) {
			sum, err := trainer.Run(ctx, trainer.Options{Config: cfg, Shards: shards, Exclude: exclude, InitFrom: initFrom, Out: out, Resume: true})
			if err != nil {
				return "", err
			}
			return sum.Checkpoint, nil
		},
	}
	spec := evaluate.Spec{Train: src, Val: src, Protocols: []string{evaluate.ProtocolKNN, evaluate.ProtocolLinear},
		Seed: uint64(cfg.Seed), Linear: eval.DefaultLinearConfig()}
	o.Evaluate = func(ctx context.Context, ckpt string) (map[string]float64, error) {
		rows, err := evaluate.Models(ctx, []evaluate.Model{{Name: "checkpoint", Checkpoint: ckpt, Config: cfg}}, spec, storage.Join(state, "eval"))
		if err != nil {
			return nil, err
		}
		return rows[0].Metrics, nil
	}
	return o
}

// stateFiles reads every file under state into a map by slash path
// relative to it.
func stateFiles(t testing.TB, state string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	objs, err := storage.Walk(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, o := range objs {
		b, err := storage.ReadFile(ctx, o.URI)
		if err != nil {
			t.Fatal(err)
		}
		files[o.Rel] = b
	}
	return files
}

// timings are the JSON fields that measure the run that wrote them
// rather than its results: the history entry's time and seconds, and
// metrics.jsonl's elapsed time and throughput.
var timings = map[string][]string{
	"history.jsonl": {"time", "seconds"},
	"metrics.jsonl": {"elapsed_s", "images_per_sec", "time", "data_wait", "loader_wait"},
}

// reports are files that report on the run that wrote them (wall times,
// rates) and are written after its results: their content is not
// compared, and a crash between the results and the report leaves them
// absent after the rerun (which reuses the results).
func isReport(rel string) bool { return path.Base(rel) == "summary.json" }

// withoutTimings returns JSON lines with the named fields removed.
func withoutTimings(t testing.TB, rel string, b []byte) []byte {
	t.Helper()
	fields := timings[path.Base(rel)]
	if fields == nil {
		return b
	}
	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, f := range fields {
			delete(m, f)
		}
		enc, _ := json.Marshal(m) // sorted keys
		out.Write(append(enc, '\n'))
	}
	return out.Bytes()
}

// diffStates lists how got differs from want: files missing or extra
// (but reports), and files whose content differs (timings removed).
func diffStates(t testing.TB, got, want map[string][]byte) []string {
	t.Helper()
	var diffs []string
	for _, rel := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[rel]
		switch {
		case isReport(rel):
		case !ok:
			diffs = append(diffs, "missing "+rel)
		case !bytes.Equal(withoutTimings(t, rel, g), withoutTimings(t, rel, want[rel])):
			diffs = append(diffs, "differs "+rel)
		}
	}
	for _, rel := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[rel]; !ok {
			diffs = append(diffs, "extra "+rel)
		}
	}
	return diffs
}

// temporaries lists the temporaries among files.
func temporaries(files map[string][]byte) []string {
	var tmp []string
	for rel := range files {
		if strings.HasPrefix(path.Base(rel), ".tmp-") {
			tmp = append(tmp, rel)
		}
	}
	slices.Sort(tmp)
	return tmp
}

// checkpointsOf lists the checkpoint folders under state.
func checkpointsOf(files map[string][]byte) []string {
	var dirs []string
	for rel := range files {
		if strings.HasSuffix(rel, "/meta.json") && strings.Contains(rel, "/checkpoints/") {
			dirs = append(dirs, path.Dir(rel))
		}
	}
	slices.Sort(dirs)
	return dirs
}

func describe(files map[string][]byte) string {
	return fmt.Sprintf("%d files, checkpoints %v", len(files), checkpointsOf(files))
}
