package retrain

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// errCrash is what the test's write hook answers once the process is
// "dead".
var errCrash = errors.New("crashed by the test")

// crashAfter installs a write hook that lets n changes to storage through
// and fails every one after, as a process killed after its nth commit
// would make none; it returns the URIs of the changes it saw. n < 0 never
// fails (a counting hook).
func crashAfter(t testing.TB, n int) func() []string {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	storage.SetWriteHook(func(uri string) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, uri)
		if n >= 0 && len(seen) > n {
			return errCrash
		}
		return nil
	})
	t.Cleanup(func() { storage.SetWriteHook(nil) })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// TestRetrainCrashAtEveryWrite crashes the second retrain cycle after each
// of its writes in turn — the listing, the increment's shards and
// manifest, each pre-training checkpoint file, metrics and plots, the
// evaluation's features, history.jsonl, history.png, the known listing,
// state.json — and reruns it: every rerun ends with the state the
// uninterrupted cycle left (state.json, the known listing, the shards, the
// checkpoints byte for byte, the evaluation, the history but for its
// timings; see the package comment for the reports left out), with no
// temporary left, until a crash point past the last write lets the cycle
// finish by itself.
//
// The cycle has a new, a changed and an unchanged object, so it prepares
// an increment, supersedes a sample of the first one, and continues
// pre-training from the first phase's checkpoint for two epochs of three
// steps, checkpointing after each.
func TestRetrainCrashAtEveryWrite(t *testing.T) {
	ctx := context.Background()
	cfg := tinyCycleConfig(t)
	root := t.TempDir()
	src, state, base := filepath.Join(root, "bucket"), filepath.Join(root, "state"), filepath.Join(root, "base")
	opts := cycleOptions(cfg, src, state)

	// Cycle 1, and the state it leaves, to start each attempt of cycle 2 from.
	photoSource(t, src, 0, 4)
	if _, err := Once(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(base, os.DirFS(state)); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		t.Helper()
		if err := os.RemoveAll(state); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(state, os.DirFS(base)); err != nil {
			t.Fatal(err)
		}
	}
	// Cycle 2's source: two photos added, one rewritten with other bytes.
	photoSource(t, src, 4, 6)
	changed, _ := filepath.Glob(filepath.Join(src, "class0", "*.jpg"))
	other, err := os.ReadFile(filepath.Join("../../testdata/photos", "42_0_wallpapers.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changed[0], other, 0o644); err != nil {
		t.Fatal(err)
	}

	changes := crashAfter(t, -1)
	res, err := Once(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	writes := len(changes())
	for i, uri := range changes() {
		rel, _ := filepath.Rel(state, uri)
		t.Logf("write %d: %s", i+1, rel)
	}
	if !res.Ran || len(res.Diff.New) != 2 || len(res.Diff.Changed) != 1 || res.Entry.Metrics["knn_top1"] == 0 && res.Entry.Metrics["linear_top1"] == 0 {
		t.Fatalf("uninterrupted cycle 2: %+v, entry %+v", res, res.Entry)
	}
	want := stateFiles(t, state)
	if ck := checkpointsOf(want); len(ck) != 4 {
		t.Fatalf("the uninterrupted cycles left %s; want 2 phases with 2 checkpoints each", describe(want))
	}
	t.Logf("cycle 2 makes %d changes to storage; its state: %s", writes, describe(want))

	// Prism logs every failed bundle at ERROR: thirty crashes' worth.
	logger := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { slog.SetDefault(logger) })
	for n := 0; ; n++ {
		restore()
		crashAfter(t, n)
		_, err := Once(ctx, opts)
		storage.SetWriteHook(nil)
		if err == nil {
			if n < writes {
				t.Fatalf("crash after write %d of %d: the cycle finished without hitting it", n, writes)
			}
			break // past the last write: nothing left to crash
		}
		// Errors from inside a Beam pipeline arrive as text.
		if !errors.Is(err, errCrash) && !strings.Contains(err.Error(), errCrash.Error()) {
			t.Fatalf("crash after write %d: the cycle failed with %v, not the crash", n, err)
		}
		res, err := Once(ctx, opts)
		if err != nil {
			t.Fatalf("rerun after a crash after write %d: %v", n, err)
		}
		if !res.Ran {
			t.Fatalf("rerun after a crash after write %d did nothing", n)
		}
		got := stateFiles(t, state)
		if d := diffStates(t, got, want); len(d) > 0 {
			t.Errorf("crash after write %d of %d, then a rerun: the state differs from the uninterrupted cycle's: %v", n, writes, d)
		}
		if tmp := temporaries(got); len(tmp) > 0 {
			t.Errorf("crash after write %d: temporaries left: %v", n, tmp)
		}
	}
}

// TestRetrainNewDataAfterACrash: the second cycle is killed after its
// phase's first checkpoint, and before the rerun two more photos land. The
// rerun prepares the increment again with them, so the checkpoint of the
// killed attempt was trained on data the phase no longer has (and on
// another number of iterations per epoch, which the trainer would refuse
// to resume): the phase trains afresh from the first phase's checkpoint in
// a folder of its own, the killed attempt's checkpoints are kept, and the
// cycle commits.
func TestRetrainNewDataAfterACrash(t *testing.T) {
	ctx := context.Background()
	cfg := tinyCycleConfig(t)
	root := t.TempDir()
	src, state := filepath.Join(root, "bucket"), filepath.Join(root, "state")
	opts := cycleOptions(cfg, src, state)
	opts.Evaluate = nil
	photoSource(t, src, 0, 4)
	if _, err := Once(ctx, opts); err != nil {
		t.Fatal(err)
	}
	st1, err := Load(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	photoSource(t, src, 4, 6)
	killed := filepath.Join(state, "pretrain", "phase-0002")
	var mu sync.Mutex
	dead := false
	storage.SetWriteHook(func(uri string) error {
		mu.Lock()
		defer mu.Unlock()
		if dead {
			return errCrash
		}
		dead = uri == filepath.Join(killed, "checkpoints", "step-00000003", "meta.json")
		return nil
	})
	t.Cleanup(func() { storage.SetWriteHook(nil) })
	if _, err := Once(ctx, opts); err == nil || !dead {
		t.Fatalf("the cycle was not killed after its first checkpoint (%v)", err)
	}
	storage.SetWriteHook(nil)

	photoSource(t, src, 6, 8)
	res, err := Once(ctx, opts)
	if err != nil {
		t.Fatalf("rerun with new data: %v", err)
	}
	if !res.Ran || len(res.Diff.New) != 4 {
		t.Fatalf("rerun: %+v", res)
	}
	st, err := Load(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	phase := st.Phases[1]
	// 4 + 4 samples, batch 2: 4 steps an epoch (the killed attempt had 3).
	if phase.Out != killed+".2" || phase.Checkpoint != filepath.Join(killed+".2", "checkpoints", "step-00000008") {
		t.Errorf("phase %+v: want it trained into %s.2 up to step 8", phase, killed)
	}
	if bb, err := checkpoint.LoadBackbone(ctx, phase.Checkpoint, checkpoint.Student); err != nil || bb.Meta.InitFrom != st1.Phases[0].Checkpoint {
		t.Errorf("the phase's checkpoint: %v, init from %q; want one started from %s", err, bb.Meta.InitFrom, st1.Phases[0].Checkpoint)
	}
	if _, err := os.Stat(filepath.Join(killed, "checkpoints", "step-00000003", "meta.json")); err != nil {
		t.Errorf("the killed attempt's checkpoint: %v, want kept", err)
	}
}
