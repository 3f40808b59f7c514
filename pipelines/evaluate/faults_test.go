package evaluate

import (
	"bytes"
	"context"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/eval"
)

// putPhotos stores photoTree's files under gs://bucket/photos/ in the
// emulator directly and returns the keys that must be dead-lettered.
func putPhotos(t *testing.T, srv *fakestorage.Server) []string {
	t.Helper()
	root, wantDead := photoTree(t)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bucket", Name: "photos/" + filepath.ToSlash(rel)}, Content: b})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return wantDead
}

// TestExtractGCSUnderFaults extracts random-init features of the photo set
// from gs:// to gs:// behind a proxy injecting each kind of fault into a
// fifth of all requests (listing, image reads, listing.jsonl through
// textio, part, index and dead-letter writes, the read-back), and checks
// every run gives the features, labels, keys and dead letters of a clean
// run exactly.
func TestExtractGCSUnderFaults(t *testing.T) {
	old, _ := storage.CurrentPolicy()
	if err := storage.SetPolicy(storage.Policy{Attempts: 12, Timeout: 30 * time.Second, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storage.SetPolicy(old) })
	ctx := context.Background()
	proxy := gcsemutest.StartFaulty(t, 13, "bucket")
	wantDead := putPhotos(t, proxy.Server)
	cfg := fmnistConfig(t)
	cfg.Seed = 7
	type result struct {
		dim        int
		x          []float32
		labels     []int
		keys, dead []string
	}
	extract := func(out string) result {
		t.Helper()
		sum, err := Extract(ctx, Options{Config: cfg, RandomInit: true, Source: "gs://bucket/photos", Format: "imagenet", Out: out, GroupSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Inputs != sum.Samples+sum.DeadLetters || sum.DeadLetters != int64(len(wantDead)) {
			t.Errorf("summary: %d inputs, %d samples, %d dead letters; want in = out + dead with %d dead", sum.Inputs, sum.Samples, sum.DeadLetters, len(wantDead))
		}
		var r result
		if r.dim, r.x, r.labels, r.keys, err = LoadFeatures(ctx, out); err != nil {
			t.Fatal(err)
		}
		for _, d := range readDead(t, out) {
			r.dead = append(r.dead, d.Stage+" "+d.Key)
		}
		slices.Sort(r.dead)
		return r
	}
	clean := extract("gs://bucket/clean")
	if len(clean.keys) != 8 || clean.dim != 128 {
		t.Fatalf("clean run: %d keys, dim %d", len(clean.keys), clean.dim)
	}
	for _, kind := range gcsemutest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			proxy.SetRules(gcsemutest.Rule{Kind: kind, P: 0.2, Delay: 5 * time.Millisecond})
			injected := proxy.InjectedTotal()
			got := extract("gs://bucket/" + string(kind))
			proxy.SetRules()
			if got.dim != clean.dim || !slices.Equal(got.x, clean.x) || !slices.Equal(got.labels, clean.labels) ||
				!slices.Equal(got.keys, clean.keys) || !slices.Equal(got.dead, clean.dead) {
				t.Errorf("features differ from the clean run's: keys %v vs %v, dead %v vs %v", got.keys, clean.keys, got.dead, clean.dead)
			}
			if proxy.InjectedTotal() == injected {
				t.Error("no fault was injected: the test tested nothing")
			}
		})
	}
}

// TestExtractGCSPermanentFailure: a photo that always answers 503 is a
// "read" dead letter whose error names the attempts, the limit and the
// last error; the other photos get their features.
func TestExtractGCSPermanentFailure(t *testing.T) {
	old, _ := storage.CurrentPolicy()
	if err := storage.SetPolicy(storage.Policy{Attempts: 3, Timeout: 2 * time.Second, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storage.SetPolicy(old) })
	ctx := context.Background()
	proxy := gcsemutest.StartFaulty(t, 3, "bucket")
	wantDead := putPhotos(t, proxy.Server)
	objs, err := storage.Walk(ctx, "gs://bucket/photos")
	if err != nil {
		t.Fatal(err)
	}
	var broken string
	for _, o := range objs {
		if !slices.Contains(wantDead, o.Rel) {
			broken = o.Rel
			break
		}
	}
	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Unavailable, Object: "^photos/" + regexp.QuoteMeta(broken) + "$", P: 1})
	cfg := fmnistConfig(t)
	sum, err := Extract(ctx, Options{Config: cfg, RawPixels: true, Source: "gs://bucket/photos", Format: "imagenet", Out: "gs://bucket/out", GroupSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Samples != 7 || sum.DeadLetters != 3 || sum.Counters["dead_letters_read"] != 1 {
		t.Errorf("summary %+v: want 7 samples, 3 dead letters, one of them read", sum)
	}
	found := false
	for _, d := range readDead(t, "gs://bucket/out") {
		if d.Key == broken {
			found = true
			if d.Stage != "read" || !strings.Contains(d.Error, "after 3 attempt(s)") || !strings.Contains(d.Error, "limit 3 attempts, 2s") || !strings.Contains(d.Error, "503") {
				t.Errorf("dead letter %+v: want stage read with the attempts, the limit and the 503", d)
			}
		}
	}
	if !found {
		t.Errorf("no dead letter for %s", broken)
	}
}

// putCheckpoint writes a trained resnet18 checkpoint of cfg at the
// gs:// folder ckpt (faults must be off).
func putCheckpoint(t *testing.T, ckpt string, cfg *configs.Config) {
	t.Helper()
	local := filepath.Join(t.TempDir(), "checkpoints", "step-00000012")
	writeCheckpoint(t, local, trainedBackbone(t, "resnet18", 5), "resnet18", cfg)
	for _, f := range []string{"backbone.safetensors", "meta.json"} {
		b, err := os.ReadFile(filepath.Join(local, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := storage.WriteFile(context.Background(), ckpt+"/"+f, b); err != nil {
			t.Fatal(err)
		}
	}
}

// TestModelsGCSUnderFaults scores a trained checkpoint that lives on
// gs:// with kNN and the fast linear probe, photos from gs:// and the
// output to gs://, behind a proxy injecting each kind of fault into a
// fifth of all requests (the checkpoint reads, listings, image reads, the
// feature parts and index written and read back): every run gives the
// clean run's metrics exactly and leaves the same objects, byte for byte
// (summary.json aside: it holds wall times).
func TestModelsGCSUnderFaults(t *testing.T) {
	old, _ := storage.CurrentPolicy()
	if err := storage.SetPolicy(storage.Policy{Attempts: 12, Timeout: 30 * time.Second, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storage.SetPolicy(old) })
	ctx := context.Background()
	proxy := gcsemutest.StartFaulty(t, 37, "bucket")
	putPhotos(t, proxy.Server)
	cfg := fmnistConfig(t)
	const ckpt = "gs://bucket/run/checkpoints/step-00000012"
	putCheckpoint(t, ckpt, cfg)
	spec := Spec{Train: "gs://bucket/photos", Val: "gs://bucket/photos", Format: "imagenet", Protocols: []string{ProtocolKNN, ProtocolLinear},
		Seed: 3, Linear: eval.DefaultLinearConfig()}
	const out = "gs://bucket/eval"
	score := func() (map[string]float64, map[string]string, map[string][]byte) {
		t.Helper()
		rows, err := Models(ctx, []Model{{Name: "checkpoint", Checkpoint: ckpt, Config: cfg}}, spec, out)
		if err != nil {
			t.Fatal(err)
		}
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
			if path.Base(o.Rel) != "summary.json" {
				files[o.Rel] = b
			}
			if err := storage.Remove(ctx, o.URI); err != nil {
				t.Fatal(err)
			}
		}
		return rows[0].Metrics, rows[0].Protocols, files
	}
	metrics, protocols, files := score()
	if _, ok := metrics["linear_top1"]; !ok || len(files) < 6 {
		t.Fatalf("clean run: metrics %v, files %v", metrics, slices.Sorted(maps.Keys(files)))
	}
	for _, kind := range gcsemutest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			proxy.SetRules(gcsemutest.Rule{Kind: kind, P: 0.2, Delay: 5 * time.Millisecond})
			injected := proxy.InjectedTotal()
			gotMetrics, gotProtocols, gotFiles := score()
			proxy.SetRules()
			if !maps.Equal(gotMetrics, metrics) || !maps.Equal(gotProtocols, protocols) {
				t.Errorf("metrics %v, protocols %v; the clean run's %v, %v", gotMetrics, gotProtocols, metrics, protocols)
			}
			if !slices.Equal(slices.Sorted(maps.Keys(gotFiles)), slices.Sorted(maps.Keys(files))) {
				t.Errorf("objects %v, the clean run's %v", slices.Sorted(maps.Keys(gotFiles)), slices.Sorted(maps.Keys(files)))
			}
			for rel, b := range files {
				if !bytes.Equal(gotFiles[rel], b) {
					t.Errorf("%s differs from the clean run's", rel)
				}
			}
			if proxy.InjectedTotal() == injected {
				t.Error("no fault was injected: the test tested nothing")
			}
		})
	}
}

// TestModelsGCSPermanentCheckpointFailure: a checkpoint whose backbone
// answers 503 to every request fails the evaluation within the policy's
// bound, before any feature is extracted, with an error naming the object,
// the attempts and the 503.
func TestModelsGCSPermanentCheckpointFailure(t *testing.T) {
	old, _ := storage.CurrentPolicy()
	if err := storage.SetPolicy(storage.Policy{Attempts: 3, Timeout: 2 * time.Second, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storage.SetPolicy(old) })
	ctx := context.Background()
	proxy := gcsemutest.StartFaulty(t, 41, "bucket")
	putPhotos(t, proxy.Server)
	cfg := fmnistConfig(t)
	const ckpt = "gs://bucket/run/checkpoints/step-00000012"
	putCheckpoint(t, ckpt, cfg)
	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Unavailable, Object: "^run/checkpoints/step-00000012/backbone.safetensors$", P: 1})
	spec := Spec{Train: "gs://bucket/photos", Val: "gs://bucket/photos", Format: "imagenet", Protocols: []string{ProtocolKNN}}
	start := time.Now()
	_, err := Models(ctx, []Model{{Name: "checkpoint", Checkpoint: ckpt, Config: cfg}}, spec, "gs://bucket/eval")
	elapsed := time.Since(start)
	proxy.SetRules()
	if err == nil {
		t.Fatal("a checkpoint that always answers 503 was evaluated")
	}
	for _, want := range []string{ckpt + "/backbone.safetensors", "after 3 attempt(s)", "503"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if elapsed > 10*time.Second {
		t.Errorf("the failed evaluation took %s", elapsed)
	}
	if objs, err := storage.Walk(ctx, "gs://bucket/eval"); err != nil || len(objs) > 0 {
		t.Errorf("the failed evaluation wrote %v (%v)", objs, err)
	}
}
