package retrain

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// checkpointParts say which files writeCheckpoint writes and what its
// meta.json claims.
type checkpointParts struct {
	noState, noBackbone, noMeta bool
	epoch, epochs               int
	arch                        string // backbone.safetensors' architecture; "" for the config's
}

// writeFinalCheckpoint writes a complete final checkpoint after step under
// out, as the trainer does (cfg's backbone, freshly initialised), and
// returns its folder.
func writeFinalCheckpoint(t *testing.T, cfg *configs.Config, out string, step int) string {
	t.Helper()
	return writeCheckpoint(t, cfg, out, step, checkpointParts{epoch: 1, epochs: 1})
}

func writeCheckpoint(t *testing.T, cfg *configs.Config, out string, step int, p checkpointParts) string {
	t.Helper()
	ctx := context.Background()
	dir := checkpoint.Dir(out, step)
	arch := p.arch
	if arch == "" {
		arch = cfg.Model.BackboneArch
	}
	opts := backbone.Options{Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem, Seed: uint64(step)}
	bb, err := backbone.New(arch, opts)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string, f *safetensors.File) {
		var buf bytes.Buffer
		if err := safetensors.Encode(&buf, f); err != nil {
			t.Fatal(err)
		}
		if err := storage.WriteFile(ctx, storage.Join(dir, name), buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if !p.noState {
		put(checkpoint.StateFile, backbone.StateDict(bb))
	}
	if !p.noBackbone {
		put(checkpoint.BackboneFile, backbone.StateDict(bb))
	}
	if !p.noMeta {
		meta := checkpoint.Meta{Method: cfg.SSLMethod, Arch: cfg.Model.BackboneArch, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem,
			EmbedDim: bb.EmbedDim(), Epoch: p.epoch, Epochs: p.epochs, Step: step, ConfigHash: cfg.Hash(), Config: cfg.CanonicalJSON(), Reason: "final"}
		if err := jsonfile.Write(ctx, storage.Join(dir, checkpoint.MetaFile), meta); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func retrainConfig(t *testing.T) *configs.Config {
	t.Helper()
	cfg, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("DATA.FORMAT", "imagenet"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRetrainRefusesUnusableCheckpoints: a pre-training that returns no
// checkpoint, or one that is missing, incomplete, not final, not loadable
// or not its own, fails the run and nothing is committed (no state, no
// history); the same run with a complete final checkpoint commits it.
func TestRetrainRefusesUnusableCheckpoints(t *testing.T) {
	ctx := context.Background()
	cfg := retrainConfig(t)
	root := t.TempDir()
	src, state := filepath.Join(root, "bucket"), filepath.Join(root, "state")
	photoSource(t, src, 0, 2)
	elsewhere := filepath.Join(root, "elsewhere")
	for _, tc := range []struct {
		name  string
		write func(out string) string
		want  string
	}{
		{"none", func(string) string { return "" }, "no checkpoint folder"},
		{"missing", func(out string) string { return checkpoint.Dir(out, 3) }, "no meta.json there"},
		{"meta.json not written yet", func(out string) string {
			return writeCheckpoint(t, cfg, out, 3, checkpointParts{noMeta: true, epoch: 1, epochs: 1})
		}, "no meta.json there"},
		{"no backbone", func(out string) string {
			return writeCheckpoint(t, cfg, out, 4, checkpointParts{noBackbone: true, epoch: 1, epochs: 1})
		}, checkpoint.BackboneFile},
		{"no training state", func(out string) string {
			return writeCheckpoint(t, cfg, out, 5, checkpointParts{noState: true, epoch: 1, epochs: 1})
		}, checkpoint.StateFile},
		{"not final", func(out string) string {
			return writeCheckpoint(t, cfg, out, 6, checkpointParts{epoch: 1, epochs: 2})
		}, "trained 1 of 2 epochs"},
		{"another architecture", func(out string) string {
			return writeCheckpoint(t, cfg, out, 7, checkpointParts{epoch: 1, epochs: 1, arch: "resnet34"})
		}, "holds a resnet34 backbone"},
		{"another run's", func(string) string { return writeFinalCheckpoint(t, cfg, elsewhere, 8) }, "not the step-8 checkpoint of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Config: cfg, Source: src, State: state, Epochs: 1,
				Pretrain: func(ctx context.Context, _ []string, _ map[string]map[string]bool, _, out string) (string, error) {
					return tc.write(out), nil
				}}
			_, err := Once(ctx, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing is committed") {
				t.Errorf("err %v, want one saying %q and that nothing is committed", err, tc.want)
			}
			for _, f := range []string{StateFile, "history.jsonl"} {
				if _, err := os.Stat(filepath.Join(state, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s after a refused checkpoint: %v", f, err)
				}
			}
		})
	}
	var final string
	res, err := Once(ctx, Options{Config: cfg, Source: src, State: state, Epochs: 1,
		Pretrain: func(ctx context.Context, _ []string, _ map[string]map[string]bool, _, out string) (string, error) {
			final = writeFinalCheckpoint(t, cfg, out, 9)
			return final, nil
		}})
	if err != nil || !res.Ran {
		t.Fatalf("a complete final checkpoint: %+v, %v", res, err)
	}
	st, err := Load(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Phases) != 1 || st.Phases[0].Checkpoint != final {
		t.Errorf("phases %+v, want the one of %s", st.Phases, final)
	}
}

// TestRetrainPhaseWithoutCheckpoint: a state whose last phase names no
// checkpoint (as an earlier sslight committed after a crash between the
// final checkpoint and the commit) continues from the newest final
// checkpoint of that phase's output; if the output holds none, the run
// stops before preparing anything instead of training from a fresh
// initialisation.
func TestRetrainPhaseWithoutCheckpoint(t *testing.T) {
	ctx := context.Background()
	cfg := retrainConfig(t)
	root := t.TempDir()
	src, state := filepath.Join(root, "bucket"), filepath.Join(root, "state")
	photoSource(t, src, 0, 2)
	var initFrom []string
	opts := Options{Config: cfg, Source: src, State: state, Epochs: 1,
		Pretrain: func(ctx context.Context, _ []string, _ map[string]map[string]bool, from, out string) (string, error) {
			initFrom = append(initFrom, from)
			return writeFinalCheckpoint(t, cfg, out, 2), nil
		}}
	if _, err := Once(ctx, opts); err != nil {
		t.Fatal(err)
	}
	st, err := Load(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	phase1 := st.Phases[0]
	st.Phases[0].Checkpoint = "" // what the bug committed
	if err := jsonfile.Write(ctx, filepath.Join(state, StateFile), st); err != nil {
		t.Fatal(err)
	}
	photoSource(t, src, 2, 3)
	if _, err := Once(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if len(initFrom) != 2 || initFrom[1] != phase1.Checkpoint {
		t.Errorf("the second phase started from %q, want phase 1's final checkpoint %s", initFrom, phase1.Checkpoint)
	}

	// Now the same, with phase 2's output emptied as well.
	st, _ = Load(ctx, state)
	st.Phases[1].Checkpoint = ""
	if err := jsonfile.Write(ctx, filepath.Join(state, StateFile), st); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(st.Phases[1].Out); err != nil {
		t.Fatal(err)
	}
	photoSource(t, src, 3, 4)
	_, err = Once(ctx, opts)
	if err == nil || !strings.Contains(err.Error(), "names no checkpoint for phase-0002") || !strings.Contains(err.Error(), "holds none") {
		t.Errorf("a phase without any checkpoint: %v", err)
	}
	if len(initFrom) != 2 {
		t.Errorf("pre-training ran %d times, want no third run", len(initFrom))
	}
	if _, err := os.Stat(filepath.Join(state, "shards", "inc-0003")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused run prepared an increment: %v", err)
	}
}

// TestRetrainCleansTemporaries: temporaries a killed run left under the
// state (a history write's, a shard's) are removed at the start of the
// next run, even one with nothing to do; a young one, possibly a live
// writer's, is kept.
func TestRetrainCleansTemporaries(t *testing.T) {
	ctx := context.Background()
	cfg := retrainConfig(t)
	root := t.TempDir()
	src, state := filepath.Join(root, "bucket"), filepath.Join(root, "state")
	photoSource(t, src, 0, 2)
	opts := Options{Config: cfg, Source: src, State: state, Epochs: 1,
		Pretrain: func(ctx context.Context, _ []string, _ map[string]map[string]bool, _, out string) (string, error) {
			return writeFinalCheckpoint(t, cfg, out, 1), nil
		}}
	if _, err := Once(ctx, opts); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * storage.StaleTemporaryAge)
	stale := []string{filepath.Join(state, ".tmp-history.jsonl-0123456789abcdef"),
		filepath.Join(state, "shards", "inc-0001", "epoch-0000", ".tmp-0a1b.tar-0123456789abcdef")}
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("half a file"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	young := filepath.Join(state, ".tmp-state.json-fedcba9876543210")
	if err := os.WriteFile(young, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Once(ctx, opts) // nothing new in the source
	if err != nil || res.Ran {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	if len(res.TemporariesRemoved) != len(stale) {
		t.Errorf("removed %v, want %v", res.TemporariesRemoved, stale)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want removed", p, err)
		}
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("the young temporary: %v, want kept", err)
	}
}
