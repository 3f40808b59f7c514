package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
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

// outputFiles reads every file under out, by slash path relative to it.
func outputFiles(t testing.TB, out string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	objs, err := storage.Walk(ctx, out)
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

// sameRun lists how the training output got differs from want: files
// missing or extra, and files whose content differs. summary.json (wall
// time, throughput, peak memory) is left out, and so are metrics.jsonl's
// timings (elapsed_s, images_per_sec, time, data_wait, loader_wait): everything else is the training's
// result and must be byte for byte the same.
func sameRun(t testing.TB, got, want map[string][]byte) []string {
	t.Helper()
	strip := func(rel string, b []byte) []byte {
		if path.Base(rel) != MetricsFile {
			return b
		}
		var out bytes.Buffer
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			delete(m, "elapsed_s")
			delete(m, "images_per_sec")
			delete(m, "time")
			delete(m, "data_wait")
			delete(m, "loader_wait")
			enc, _ := json.Marshal(m)
			out.Write(append(enc, '\n'))
		}
		return out.Bytes()
	}
	var diffs []string
	for _, rel := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[rel]
		switch {
		case path.Base(rel) == SummaryFile:
		case !ok:
			diffs = append(diffs, "missing "+rel)
		case !bytes.Equal(strip(rel, g), strip(rel, want[rel])):
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

// errCrash is what the crash hook answers once the process is "dead".
var errCrash = errors.New("crashed by the test")

// TestRunCrashAtEveryWrite stops a two-epoch run after each of its writes
// in turn — metrics.jsonl, loss.png and the three files of each epoch's
// checkpoint, summary.json — as a kill would (every later write fails),
// and resumes it: each resumed run ends with the uninterrupted run's
// output, checkpoints byte for byte and metrics.jsonl but for its
// timings, whatever the write it was stopped at.
func TestRunCrashAtEveryWrite(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t)
	root := t.TempDir()
	shards := storage.Join(root, "shards")
	writeShards(t, shards, cfg, 24, 1)
	run := func(out string, resume bool) error {
		_, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, Resume: resume})
		return err
	}
	var mu sync.Mutex
	seen, limit := 0, -1
	storage.SetWriteHook(func(string) error {
		mu.Lock()
		defer mu.Unlock()
		if seen++; limit >= 0 && seen > limit {
			return errCrash
		}
		return nil
	})
	t.Cleanup(func() { storage.SetWriteHook(nil) })
	straight := storage.Join(root, "straight")
	if err := run(straight, false); err != nil {
		t.Fatal(err)
	}
	writes := seen
	want := outputFiles(t, straight)
	for n := 0; n <= writes; n++ {
		out := storage.Join(root, fmt.Sprintf("crash-%02d", n))
		mu.Lock()
		seen, limit = 0, n
		mu.Unlock()
		err := run(out, false)
		mu.Lock()
		limit = -1
		mu.Unlock()
		if n == writes {
			if err != nil {
				t.Errorf("a crash after the last write stopped the run: %v", err)
			}
			break
		}
		if !errors.Is(err, errCrash) {
			t.Fatalf("crash after write %d of %d: %v", n, writes, err)
		}
		if err := run(out, true); err != nil {
			t.Fatalf("resume after a crash after write %d: %v", n, err)
		}
		if d := sameRun(t, outputFiles(t, out), want); len(d) > 0 {
			t.Errorf("crash after write %d of %d, then --resume: %v", n, writes, d)
		}
	}
}

// TestPretrainGCSUnderFaults trains with the shards and the output on
// gs:// behind a proxy injecting each kind of fault into a fifth of all
// requests (the manifest and shard reads, the checkpoint listing, every
// checkpoint, metrics and plot write): every run leaves exactly the
// objects of a clean run, checkpoints byte for byte (nothing duplicated,
// nothing left behind).
func TestPretrainGCSUnderFaults(t *testing.T) {
	setPolicy(t, faultPolicy)
	proxy := gcsemutest.StartFaulty(t, 23, "bucket")
	ctx := context.Background()
	cfg := tinyConfig(t)
	const shards = "gs://bucket/shards"
	writeShards(t, shards, cfg, 24, 1)
	train := func(out string) {
		t.Helper()
		sum, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out})
		if err != nil {
			t.Fatal(err)
		}
		if !sum.Done || sum.Checkpoint != out+"/checkpoints/step-00000006" {
			t.Fatalf("summary %+v: want done with the step-6 checkpoint", sum)
		}
	}
	train("gs://bucket/clean")
	clean := outputFiles(t, "gs://bucket/clean")
	if len(clean) < 9 {
		t.Fatalf("the clean run wrote only %v", slices.Sorted(maps.Keys(clean)))
	}
	for _, kind := range gcsemutest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			out := "gs://bucket/" + string(kind)
			proxy.SetRules(gcsemutest.Rule{Kind: kind, P: 0.2, Delay: 5 * time.Millisecond})
			before, injected := storage.Retrying(), proxy.InjectedTotal()
			train(out)
			proxy.SetRules()
			if d := sameRun(t, outputFiles(t, out), clean); len(d) > 0 {
				t.Errorf("the output differs from the clean run's: %v", d)
			}
			if proxy.InjectedTotal() == injected {
				t.Error("no fault was injected: the test tested nothing")
			}
			t.Logf("%s: %d faults injected, %d retries", kind, proxy.InjectedTotal()-injected, storage.Retrying().Retries-before.Retries)
		})
	}
}

// TestPretrainGCSPermanentFailure: the checkpoint a --resume must read
// answers 503 to every request. The run fails within the policy's bound
// with an error naming the object, the attempts, the limit and the last
// error, and writes nothing.
func TestPretrainGCSPermanentFailure(t *testing.T) {
	setPolicy(t, storage.Policy{Attempts: 3, Timeout: 2 * time.Second, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	proxy := gcsemutest.StartFaulty(t, 29, "bucket")
	ctx := context.Background()
	cfg := tinyConfig(t)
	const shards, out = "gs://bucket/shards", "gs://bucket/out"
	writeShards(t, shards, cfg, 24, 1)
	if _, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, MaxSteps: 2}); err != nil {
		t.Fatal(err)
	}
	before := outputFiles(t, out)
	const broken = "out/checkpoints/step-00000002/" + "checkpoint.safetensors"
	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Unavailable, Object: "^" + broken + "$", P: 1})
	start := time.Now()
	_, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, Resume: true})
	elapsed := time.Since(start)
	proxy.SetRules()
	if err == nil {
		t.Fatal("the resume read a checkpoint that always answers 503")
	}
	for _, want := range []string{"gs://bucket/" + broken, "after 3 attempt(s)", "limit 3 attempts, 2s", "503"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !errors.Is(err, storage.ErrGaveUp) {
		t.Errorf("error %v does not wrap storage.ErrGaveUp", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("the failed resume took %s; the policy bounds the read to 2 s", elapsed)
	}
	if d := sameRun(t, outputFiles(t, out), before); len(d) > 0 {
		t.Errorf("the failed resume changed the output: %v", d)
	}
}

// BenchmarkPretrainGCSFaults pre-trains tinyConfig's model (24 samples of
// random views, batch 8, two epochs of three steps, a checkpoint after
// each epoch) with the shards and the output on gs:// behind the
// fault-injecting proxy, every request drawing one of the five faults
// (503, 429, 500 after the body, a 20 ms delay, a cut connection) with
// total probability p, under DefaultPolicy's backoff (0.5 s doubling to
// 30 s, full jitter) but 12 attempts. It reports requests, faults and
// retries per run; ns/op against p=0 is the wall-time overhead:
//
//	go test -tags 'turbojpeg openblas' -run '^$' -bench PretrainGCSFaults -benchtime 5x ./trainer/
func BenchmarkPretrainGCSFaults(b *testing.B) {
	p := storage.DefaultPolicy()
	p.Attempts = 12
	setPolicy(b, p)
	proxy := gcsemutest.StartFaulty(b, 31, "bucket")
	cfg := tinyConfig(b)
	const shards = "gs://bucket/shards"
	writeShards(b, shards, cfg, 24, 1)
	run := 0
	for _, total := range []float64{0, 0.1, 0.3} {
		b.Run(fmt.Sprintf("p=%.1f", total), func(b *testing.B) {
			// Five independent draws whose union has probability total.
			each := 1 - math.Pow(1-total, 1.0/float64(len(gcsemutest.Kinds)))
			var rules []gcsemutest.Rule
			for _, k := range gcsemutest.Kinds {
				rules = append(rules, gcsemutest.Rule{Kind: k, P: each, Delay: 20 * time.Millisecond})
			}
			requests, injected, retries := proxy.Requests(), proxy.InjectedTotal(), storage.Retrying().Retries
			for b.Loop() {
				run++
				proxy.SetRules(rules...)
				sum, err := Run(context.Background(), Options{Config: cfg, Shards: []string{shards}, Out: fmt.Sprintf("gs://bucket/bench-%d", run)})
				proxy.SetRules()
				if err != nil {
					b.Fatal(err)
				}
				if !sum.Done || sum.Steps != 6 {
					b.Fatalf("summary %+v: want 6 steps, done", sum)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(proxy.Requests()-requests)/n, "requests/op")
			b.ReportMetric(float64(proxy.InjectedTotal()-injected)/n, "faults/op")
			b.ReportMetric(float64(storage.Retrying().Retries-retries)/n, "retries/op")
		})
	}
}
