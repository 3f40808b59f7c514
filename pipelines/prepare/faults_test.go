package prepare

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/storage"
)

// faultPolicy is a retry policy for tests: enough attempts that a fault in
// a quarter of all requests never exhausts them, and millisecond pauses.
var faultPolicy = storage.Policy{Attempts: 12, Timeout: 30 * time.Second, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}

func setPolicy(t testing.TB, p storage.Policy) {
	t.Helper()
	old, _ := storage.CurrentPolicy()
	if err := storage.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storage.SetPolicy(old) })
}

// putSource stores the files under prefix in the emulator directly (not
// through the proxy).
func putSource(srv *fakestorage.Server, bucket, prefix string, files map[string][]byte) {
	for rel, b := range files {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: prefix + rel}, Content: b})
	}
}

// takeOutput returns name (relative to prefix) → content of every object
// under prefix but summary.json (it holds wall times), read from the
// emulator directly, and deletes them (faults must be off), so the next
// run writes the same names afresh.
func takeOutput(t testing.TB, srv *fakestorage.Server, bucket, prefix string) map[string][]byte {
	t.Helper()
	list, err := srv.ListObjectsWithOptionsPaginated(bucket, fakestorage.ListOptions{Prefix: prefix})
	if err != nil || list.NextPageToken != "" {
		t.Fatalf("list the emulator's %s: %v (next page %q)", prefix, err, list.NextPageToken)
	}
	objs := list.Objects
	out := map[string][]byte{}
	for _, o := range objs {
		full, err := srv.GetObject(bucket, o.Name)
		if err != nil {
			t.Fatal(err)
		}
		if rel := strings.TrimPrefix(o.Name, prefix); rel != SummaryFileName {
			out[rel] = full.Content
		}
		if err := storage.Remove(context.Background(), "gs://"+bucket+"/"+o.Name); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestPrepareGCSUnderFaults runs the GCS job (gs:// to gs://) behind a
// proxy that injects each kind of fault into a fifth of all requests —
// source listing and reads, listing.jsonl through Beam's textio, shard,
// manifest and dead-letter writes — and checks that every run leaves
// exactly the objects a clean run leaves, byte for byte, with in = out +
// dead.
func TestPrepareGCSUnderFaults(t *testing.T) {
	setPolicy(t, faultPolicy)
	proxy := gcsemutest.StartFaulty(t, 11, "bucket")
	files, wantDead := imagenetTree(t)
	putSource(proxy.Server, "bucket", "imagenet/train/", files)
	cfg := smallConfig(t, "dino_cnn_sslight", "imagenet")
	ctx := context.Background()
	const out = "gs://bucket/shards"
	run := func() {
		t.Helper()
		if _, err := Run(ctx, Options{Config: cfg, Source: "gs://bucket/imagenet/train", Out: out, Epochs: 2}); err != nil {
			t.Fatal(err)
		}
		checkRun(t, out, 2, len(files), wantDead)
	}
	run()
	clean := takeOutput(t, proxy.Server, "bucket", "shards/")
	if len(clean) < 5 {
		t.Fatalf("the clean run wrote only %v", slices.Sorted(maps.Keys(clean)))
	}
	for _, kind := range gcsemutest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			proxy.SetRules(gcsemutest.Rule{Kind: kind, P: 0.2, Delay: 5 * time.Millisecond})
			before, injected := storage.Retrying(), proxy.InjectedTotal()
			run()
			proxy.SetRules()
			got := takeOutput(t, proxy.Server, "bucket", "shards/")
			if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(clean))) {
				t.Errorf("objects %v, clean run %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(clean)))
			}
			for name, b := range clean {
				if !bytes.Equal(got[name], b) {
					t.Errorf("%s differs from the clean run's", name)
				}
			}
			if proxy.InjectedTotal() == injected {
				t.Error("no fault was injected: the test tested nothing")
			}
			t.Logf("%s: %d faults injected, %d retries", kind, proxy.InjectedTotal()-injected, storage.Retrying().Retries-before.Retries)
		})
	}
}

// TestPrepareGCSPermanentFailure: one source object answers 503 to every
// request. Its read gives up within the policy's bound and the object is a
// "read" dead letter in each epoch, whose error says how many attempts were
// made and what the last one got; every other input is prepared.
func TestPrepareGCSPermanentFailure(t *testing.T) {
	setPolicy(t, storage.Policy{Attempts: 3, Timeout: 2 * time.Second, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	proxy := gcsemutest.StartFaulty(t, 5, "bucket")
	files, wantDead := imagenetTree(t)
	putSource(proxy.Server, "bucket", "imagenet/train/", files)
	var broken string
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		if _, dead := wantDead[rel]; !dead && strings.HasSuffix(rel, ".jpg") {
			broken = rel
			break
		}
	}
	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Unavailable, Object: "^imagenet/train/" + broken + "$", P: 1})
	wantDead[broken] = "after 3 attempt(s)"
	cfg := smallConfig(t, "dino_cnn_sslight", "imagenet")
	start := time.Now()
	sum, err := Run(context.Background(), Options{Config: cfg, Source: "gs://bucket/imagenet/train", Out: "gs://bucket/shards", Epochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Minute {
		t.Errorf("the run took %s", el)
	}
	checkRun(t, "gs://bucket/shards", 2, len(files), wantDead)
	if sum.Counters["dead_letters_read"] != 2 {
		t.Errorf("counters %v: want 2 read dead letters", sum.Counters)
	}
	recs, err := deadletter.Read(context.Background(), "gs://bucket/shards/"+deadletter.FileName)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Key == broken && (r.Stage != "read" || !strings.Contains(r.Error, "503") || !strings.Contains(r.Error, "limit 3 attempts, 2s")) {
			t.Errorf("dead letter %+v: want stage read, the attempts, the limit and the last error (503)", r)
		}
	}
}

// TestPrepareCleansTemporaries: a local output holding a killed run's
// temporaries gets them removed when prepare starts, and says how many.
func TestPrepareCleansTemporaries(t *testing.T) {
	files, wantDead := imagenetTree(t)
	src, out := t.TempDir(), t.TempDir()
	writeTree(t, src, files)
	stale := filepath.Join(out, "epoch-0000", ".tmp-0a1b.tar-0123456789abcdef")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, []byte("half a shard"), 0o644)
	old := time.Now().Add(-2 * storage.StaleTemporaryAge)
	os.Chtimes(stale, old, old)
	sum, err := Run(context.Background(), Options{Config: smallConfig(t, "dino_cnn_sslight", "imagenet"), Source: src, Out: out, Epochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) || sum.TemporariesRemoved != 1 {
		t.Errorf("stale temporary: stat %v, summary says %d removed", err, sum.TemporariesRemoved)
	}
	checkRun(t, out, 1, len(files), wantDead)
}

// BenchmarkPrepareGCSFaults prepares 64 real photos (the 8 of
// testdata/photos, 8 copies each under 4 classes; small crops, 2 epochs)
// from gs:// to gs:// behind the fault-injecting proxy, with every request
// drawing one of the five faults (503, 429, 500 after the body, a 20 ms
// delay, a cut connection) with total probability p, under DefaultPolicy's
// backoff (0.5 s doubling to 30 s, full jitter) but 12 attempts. It reports
// the requests, faults and retries per run; ns/op against p=0 is the
// wall-time overhead:
//
//	go test -tags 'turbojpeg openblas' -run '^$' -bench PrepareGCSFaults -benchtime 3x ./pipelines/prepare/
func BenchmarkPrepareGCSFaults(b *testing.B) {
	photos, _ := filepath.Glob("../../testdata/photos/*.jpg")
	slices.Sort(photos)
	if len(photos) == 0 {
		b.Skip("no photos in testdata/photos")
	}
	files := map[string][]byte{}
	for i, p := range photos {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		for c := range 8 {
			files[fmt.Sprintf("n%02d/%d_%s", (i+c)%4, c, filepath.Base(p))] = data
		}
	}
	p := storage.DefaultPolicy()
	p.Attempts = 12
	setPolicy(b, p)
	proxy := gcsemutest.StartFaulty(b, 17, "bucket")
	putSource(proxy.Server, "bucket", "imagenet/train/", files)
	cfg, err := configs.Preset("dino_cnn_sslight")
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range map[string]string{"DATA.FORMAT": "imagenet", "MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE": "48", "MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE": "24"} {
		if err := cfg.Set(k, v); err != nil {
			b.Fatal(err)
		}
	}
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
				sum, err := Run(context.Background(), Options{Config: cfg, Source: "gs://bucket/imagenet/train",
					Out: fmt.Sprintf("gs://bucket/bench-%d", run), Epochs: 2})
				proxy.SetRules()
				if err != nil {
					b.Fatal(err)
				}
				if sum.Samples != 2*len(files) {
					b.Fatalf("%d samples, want %d", sum.Samples, 2*len(files))
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(proxy.Requests()-requests)/n, "requests/op")
			b.ReportMetric(float64(proxy.InjectedTotal()-injected)/n, "faults/op")
			b.ReportMetric(float64(storage.Retrying().Retries-retries)/n, "retries/op")
		})
	}
}
