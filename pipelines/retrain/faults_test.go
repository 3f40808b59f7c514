package retrain

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/storage"
)

// faultPolicy is a retry policy for tests: enough attempts that a fault in
// a fifth of all requests never exhausts them, and millisecond pauses.
var faultPolicy = storage.Policy{Attempts: 12, Timeout: 30 * time.Second, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}

func setPolicy(t testing.TB, p storage.Policy) {
	t.Helper()
	old, _ := storage.CurrentPolicy()
	if err := storage.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storage.SetPolicy(old) })
}

// gcsPhotos stores photos [from, to) of testdata/photos under prefix in
// two class folders, as photoSource does locally, and returns their
// names relative to prefix.
func gcsPhotos(t *testing.T, prefix string, from, to int) []string {
	t.Helper()
	names, err := filepath.Glob("../../testdata/photos/*.jpg")
	if err != nil || len(names) < to {
		t.Fatalf("testdata photos: %v (%d)", err, len(names))
	}
	var rels []string
	for i := from; i < to; i++ {
		b, err := os.ReadFile(names[i])
		if err != nil {
			t.Fatal(err)
		}
		rel := fmt.Sprintf("class%d/%s", i%2, filepath.Base(names[i]))
		if err := storage.WriteFile(context.Background(), prefix+"/"+rel, b); err != nil {
			t.Fatal(err)
		}
		rels = append(rels, rel)
	}
	return rels
}

// takeState returns the files under state and removes them (faults must
// be off), so the next cycle starts from nothing with the same URIs.
func takeState(t *testing.T, state string) map[string][]byte {
	t.Helper()
	files := stateFiles(t, state)
	for rel := range files {
		if err := storage.Remove(context.Background(), state+"/"+rel); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// quietBeam silences Prism's logging of failed bundles for the test.
func quietBeam(t *testing.T) {
	logger := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { slog.SetDefault(logger) })
}

// TestRetrainCycleGCSUnderFaults runs one whole retrain cycle from gs://
// to gs:// — listing, prepare, two pre-training epochs with a checkpoint
// after each, the kNN and linear evaluation, history and state — behind a
// proxy injecting each kind of fault into a fifth of all requests, and
// checks each faulted cycle leaves exactly the state of a clean one:
// state.json, the known listing, the shards, every checkpoint, the
// features and history (but for its timings), nothing more.
func TestRetrainCycleGCSUnderFaults(t *testing.T) {
	setPolicy(t, faultPolicy)
	proxy := gcsemutest.StartFaulty(t, 19, "bucket")
	ctx := context.Background()
	const src, state = "gs://bucket/src", "gs://bucket/state"
	gcsPhotos(t, src, 0, 4)
	cfg := tinyCycleConfig(t)
	opts := cycleOptions(cfg, src, state)
	cycle := func() {
		t.Helper()
		res, err := Once(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Ran || len(res.Diff.New) != 4 {
			t.Fatalf("cycle: %+v", res)
		}
	}
	cycle()
	clean := takeState(t, state)
	if ck := checkpointsOf(clean); len(ck) != 2 {
		t.Fatalf("the clean cycle left %s; want one phase with 2 checkpoints", describe(clean))
	}
	for _, kind := range gcsemutest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			proxy.SetRules(gcsemutest.Rule{Kind: kind, P: 0.2, Delay: 5 * time.Millisecond})
			before, injected := storage.Retrying(), proxy.InjectedTotal()
			cycle()
			proxy.SetRules()
			got := takeState(t, state)
			if d := diffStates(t, got, clean); len(d) > 0 {
				t.Errorf("the state differs from the clean cycle's: %v", d)
			}
			if proxy.InjectedTotal() == injected {
				t.Error("no fault was injected: the test tested nothing")
			}
			t.Logf("%s: %d faults injected, %d retries", kind, proxy.InjectedTotal()-injected, storage.Retrying().Retries-before.Retries)
		})
	}
}

// TestRetrainGCSPermanentFailures: with a policy of 3 attempts and 2 s,
//   - a source image that answers 503 to every request becomes a "read"
//     dead letter of its increment naming the attempts, the limit and the
//     503, and the cycle commits with everything else trained on;
//   - when the checkpoint the next cycle continues from answers 503 to
//     every request, that cycle fails within the bound with an error naming
//     the object, before preparing anything, and commits nothing; once the
//     object reads again, the same cycle runs.
func TestRetrainGCSPermanentFailures(t *testing.T) {
	setPolicy(t, storage.Policy{Attempts: 3, Timeout: 2 * time.Second, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	quietBeam(t)
	proxy := gcsemutest.StartFaulty(t, 7, "bucket")
	ctx := context.Background()
	const src, state = "gs://bucket/src", "gs://bucket/state"
	rels := gcsPhotos(t, src, 0, 5)
	cfg := tinyCycleConfig(t)
	opts := cycleOptions(cfg, src, state)
	opts.Evaluate = nil // the evaluation would read the broken photo as well

	broken := rels[4]
	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Unavailable, Object: "^src/" + regexp.QuoteMeta(broken) + "$", P: 1})
	res, err := Once(ctx, opts)
	proxy.SetRules()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ran || len(res.Diff.New) != 5 {
		t.Fatalf("cycle 1: %+v", res)
	}
	recs, err := deadletter.Read(ctx, state+"/shards/inc-0001/"+deadletter.FileName)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if strings.HasSuffix(r.URI, broken) {
			found = true
			if r.Stage != "read" || !strings.Contains(r.Error, "after 3 attempt(s)") || !strings.Contains(r.Error, "limit 3 attempts, 2s") || !strings.Contains(r.Error, "503") {
				t.Errorf("dead letter %+v: want stage read with the attempts, the limit and the 503", r)
			}
		}
	}
	if !found {
		t.Errorf("no dead letter for %s among %+v", broken, recs)
	}
	st, err := Load(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	if st.Runs != 1 || len(st.Phases) != 1 || st.Phases[0].Checkpoint == "" {
		t.Fatalf("state after cycle 1: %+v", st)
	}

	gcsPhotos(t, src, 5, 6)
	ckpt := strings.TrimPrefix(st.Phases[0].Checkpoint, "gs://bucket/") + "/checkpoint.safetensors"
	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Unavailable, Object: "^" + regexp.QuoteMeta(ckpt) + "$", P: 1})
	start := time.Now()
	_, err = Once(ctx, opts)
	elapsed := time.Since(start)
	proxy.SetRules()
	if err == nil {
		t.Fatal("cycle 2 ran from a checkpoint that always answers 503")
	}
	for _, want := range []string{"gs://bucket/" + ckpt, "after 3 attempt(s)", "503"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if elapsed > 20*time.Second {
		t.Errorf("the failed cycle took %s", elapsed)
	}
	after := stateFiles(t, state)
	if slices.ContainsFunc(slices.Collect(maps.Keys(after)), func(rel string) bool { return strings.Contains(rel, "inc-0002") || strings.Contains(rel, "phase-0002") }) {
		t.Errorf("the failed cycle prepared or trained: %v", slices.Sorted(maps.Keys(after)))
	}
	if st2, _ := Load(ctx, state); st2.Runs != 1 {
		t.Errorf("the failed cycle committed: %d runs", st2.Runs)
	}
	if res, err = Once(ctx, opts); err != nil || !res.Ran || len(res.Diff.New) != 1 {
		t.Fatalf("cycle 2 once the checkpoint reads: %+v, %v", res, err)
	}
}
