package prepare

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/transforms"
)

// imagenetTree lays out two classes of real photos plus every bad-input
// fixture of testdata/prepare/bad (see its README) in the ImageNet layout,
// and returns the relative path → bytes map, with the keys that must be
// dead-lettered and the reason each must give.
func imagenetTree(t *testing.T) (files map[string][]byte, dead map[string]string) {
	t.Helper()
	files = map[string][]byte{}
	photos, _ := filepath.Glob("../../testdata/photos/*.jpg")
	sort.Strings(photos)
	if len(photos) < 6 {
		t.Fatalf("want real photos in testdata/photos, found %d", len(photos))
	}
	for i, p := range photos[:6] {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		class := []string{"n01440764", "n02102040"}[i%2]
		files[class+"/"+filepath.Base(p)] = b
	}
	bad, _ := filepath.Glob("../../testdata/prepare/bad/*")
	for _, p := range bad {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files["n02102040/"+filepath.Base(p)] = b
	}
	files["README.txt"] = []byte("a file outside any class folder\n")
	dead = map[string]string{
		"n02102040/zero_bytes.JPEG": "empty", "n02102040/truncated.JPEG": "truncated",
		"n02102040/random_bytes.JPEG": "unknown_format", "n02102040/bomb.png": "too_large",
		"n02102040/notes.txt": "unknown_format", "README.txt": "not inside a class folder",
	}
	return files, dead
}

func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for rel, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func preset(t *testing.T, name string) *configs.Config {
	t.Helper()
	c, err := configs.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkRun verifies the nothing-lost invariant and the dead letters, and
// returns the manifest.
func checkRun(t *testing.T, out string, epochs, inputs int, wantDead map[string]string) *manifest.Manifest {
	t.Helper()
	ctx := context.Background()
	m, err := manifest.Read(ctx, out+"/"+manifest.FileName)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(ctx); err != nil {
		t.Fatalf("manifest does not match the shards: %v", err)
	}
	if len(m.EpochCounts) != epochs {
		t.Fatalf("%d epoch counts, want %d", len(m.EpochCounts), epochs)
	}
	for _, c := range m.EpochCounts {
		if c.Inputs != int64(inputs) || c.Inputs != c.Samples+c.Dead || c.Dead != int64(len(wantDead)) {
			t.Errorf("epoch %d: inputs %d samples %d dead %d; want %d inputs, %d dead, inputs = samples + dead",
				c.Epoch, c.Inputs, c.Samples, c.Dead, inputs, len(wantDead))
		}
	}
	recs, err := deadletter.Read(ctx, out+"/"+deadletter.FileName)
	if err != nil {
		t.Fatal(err)
	}
	perEpoch := map[int]int{}
	for _, r := range recs {
		if r.Epoch == nil {
			// Refused annotations are not inputs: no epoch, and the
			// manifest counts them apart.
			if r.Stage != "annotation" {
				t.Errorf("dead letter without an epoch: %+v", r)
			}
			continue
		}
		perEpoch[*r.Epoch]++
		reason, ok := wantDead[r.Key]
		if !ok || !strings.Contains(r.Error, reason) {
			t.Errorf("unexpected dead letter %+v (want one of %v)", r, wantDead)
		}
	}
	for e := 0; e < epochs; e++ {
		if perEpoch[e] != len(wantDead) {
			t.Errorf("epoch %d has %d dead letters, want %d", e, perEpoch[e], len(wantDead))
		}
	}
	return m
}

// readSamples reads every sample of the manifest's shards.
func readSamples(t *testing.T, m *manifest.Manifest) (metas []transforms.SampleMeta, samples []shard.Sample) {
	t.Helper()
	for _, info := range m.Shards {
		r, err := shard.Open(context.Background(), info.URI, &shard.Expect{Bytes: info.Bytes, CRC32C: info.CRC32C})
		if err != nil {
			t.Fatal(err)
		}
		for {
			var s shard.Sample
			err := r.Next(&s)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", info.URI, err)
			}
			var meta transforms.SampleMeta
			if err := json.Unmarshal(s.Meta, &meta); err != nil {
				t.Fatal(err)
			}
			if meta.Epoch != info.Epoch {
				t.Errorf("sample %s of epoch %d sits in a shard of epoch %d", s.Key, meta.Epoch, info.Epoch)
			}
			metas = append(metas, meta)
			samples = append(samples, s)
		}
		r.Close()
	}
	return metas, samples
}

// treeDigest hashes every file under dir except summary.json (which holds
// wall times), keyed by relative path.
func treeDigest(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	d := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Name() == SummaryFileName {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		d[rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPrepareImageNetLocal is the acceptance run: the SSLight CNN
// preset on real photos mixed with bad files, two epochs, seed 0.
func TestPrepareImageNetLocal(t *testing.T) {
	files, wantDead := imagenetTree(t)
	src, out := t.TempDir(), t.TempDir()
	writeTree(t, src, files)
	cfg := preset(t, "dino_cnn_sslight")
	opts := Options{Config: cfg, Source: src, Out: out, Epochs: 2}
	if err := cfg.Set("DATA.FORMAT", "imagenet"); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	inputs := len(files)
	if sum.Inputs != inputs || sum.Samples != 2*(inputs-len(wantDead)) || sum.DeadLetters != 2*len(wantDead) {
		t.Errorf("summary %+v: want %d inputs, %d samples, %d dead letters", sum, inputs, 2*(inputs-len(wantDead)), 2*len(wantDead))
	}
	if sum.Counters["samples_written"] != int64(sum.Samples) || sum.Counters["dead_letters"] != int64(sum.DeadLetters) ||
		sum.Counters["dead_letters_list"] != 2 || sum.Counters["dead_letters_decode"] != int64(2*(len(wantDead)-1)) {
		t.Errorf("Beam counters %v do not match the summary %+v", sum.Counters, sum)
	}
	m := checkRun(t, out, 2, inputs, wantDead)
	if m.ConfigHash != cfg.Hash() || !strings.EqualFold(strings.Join(m.ClassNames, ","), "n01440764,n02102040") {
		t.Errorf("manifest config hash %s classes %v", m.ConfigHash, m.ClassNames)
	}
	metas, samples := readSamples(t, m)
	seen := map[string]int{}
	for i, meta := range metas {
		class := strings.SplitN(meta.SourceKey, "/", 2)[0]
		if want := map[string]int{"n01440764": 0, "n02102040": 1}[class]; meta.Label != want || meta.Class != class {
			t.Errorf("%s: label %d (%s), want %d (%s)", meta.SourceKey, meta.Label, meta.Class, want, class)
		}
		s := samples[i]
		if fmt.Sprint(s.Global.Shape()) != "[2 224 224 3]" || fmt.Sprint(s.Local.Shape()) != "[6 128 128 3]" {
			t.Errorf("%s: shapes %v %v, want [2 224 224 3] [6 128 128 3]", meta.SourceKey, s.Global.Shape(), s.Local.Shape())
		}
		seen[meta.SourceKey]++
	}
	for rel := range files {
		if _, isDead := wantDead[rel]; !isDead && seen[rel] != 2 {
			t.Errorf("%s appears in %d samples, want one per epoch", rel, seen[rel])
		}
	}
	pythonReadsShards(t, m, 224, 128, 6)

	// Same inputs and config: a second run (here with one goroutine per
	// shard) rewrites byte-identical shards, manifest and dead letters.
	before := treeDigest(t, out)
	opts.Workers = 1
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	after := treeDigest(t, out)
	if len(before) != len(after) {
		t.Errorf("second run wrote %d files, first %d", len(after), len(before))
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s differs between two runs", p)
		}
	}

	// Another configuration into the same output is refused.
	other := preset(t, "dino_cnn_baseline")
	other.Set("DATA.FORMAT", "imagenet")
	if _, err := Run(context.Background(), Options{Config: other, Source: src, Out: out, Epochs: 1}); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("a second config into the same --out: err = %v, want a refusal naming --overwrite", err)
	}
}

// pythonReadsShards reads every shard with Python's tarfile and numpy, as a
// PyTorch user would, and checks shapes, dtype and keys.
func pythonReadsShards(t *testing.T, m *manifest.Manifest, global, local, nLocal int) {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		t.Logf("skipping the Python read-back: %s with numpy is not available (apt-get install python3-numpy)", py)
		return
	}
	var uris []string
	for _, s := range m.Shards {
		uris = append(uris, s.URI)
	}
	script := `
import io, json, sys, tarfile, numpy as np
g, l, nl = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
n = 0
for path in sys.argv[4:]:
    with tarfile.open(path) as tf:
        members = tf.getmembers()
        keys = sorted({m.name.split('.', 1)[0] for m in members})
        for k in keys:
            meta = json.loads(tf.extractfile(k + '.json').read())
            a = np.load(io.BytesIO(tf.extractfile(k + '.global.npy').read()))
            b = np.load(io.BytesIO(tf.extractfile(k + '.local.npy').read()))
            assert a.shape == (2, g, g, 3) and a.dtype == np.uint8, (k, a.shape, a.dtype)
            assert b.shape == (nl, l, l, 3) and b.dtype == np.uint8, (k, b.shape, b.dtype)
            assert meta['key'] == k, (meta['key'], k)
            n += 1
print(n)
`
	cmd := exec.Command(py, append([]string{"-c", script, fmt.Sprint(global), fmt.Sprint(local), fmt.Sprint(nLocal)}, uris...)...)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python could not read the shards: %v\n%s", err, outb)
	}
	var total int
	for _, s := range m.Shards {
		total += s.Samples
	}
	if strings.TrimSpace(string(outb)) != fmt.Sprint(total) {
		t.Errorf("python read %s samples, the manifest lists %d", outb, total)
	}
}

// TestPrepareGCSEmulator runs the same job from gs:// to gs:// against an
// in-process GCS emulator, reads the shards back from the bucket, and
// checks the crops equal those of a local run of the same images (the
// source location is not part of the random draws).
func TestPrepareGCSEmulator(t *testing.T) {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0, PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL(), "http://"))
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "bucket"})
	files, wantDead := imagenetTree(t)
	for rel, b := range files {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bucket", Name: "imagenet/train/" + rel}, Content: b})
	}
	cfg := smallConfig(t, "dino_cnn_sslight", "imagenet")
	if _, err := Run(context.Background(), Options{Config: cfg, Source: "gs://bucket/imagenet/train", Out: "gs://bucket/shards", Epochs: 2}); err != nil {
		t.Fatal(err)
	}
	m := checkRun(t, "gs://bucket/shards", 2, len(files), wantDead)
	for _, s := range m.Shards {
		if !strings.HasPrefix(s.URI, "gs://bucket/shards/epoch-") {
			t.Errorf("shard %s is not in the bucket", s.URI)
		}
	}
	gsMetas, gsSamples := readSamples(t, m)

	src, out := t.TempDir(), t.TempDir()
	writeTree(t, src, files)
	if _, err := Run(context.Background(), Options{Config: cfg, Source: src, Out: out, Epochs: 2}); err != nil {
		t.Fatal(err)
	}
	localMetas, localSamples := readSamples(t, checkRun(t, out, 2, len(files), wantDead))
	if len(localMetas) != len(gsMetas) {
		t.Fatalf("%d samples from gs://, %d locally", len(gsMetas), len(localMetas))
	}
	for i := range gsMetas {
		if gsMetas[i].Key != localMetas[i].Key || !bytes.Equal(gsSamples[i].Global.Pix, localSamples[i].Global.Pix) ||
			!bytes.Equal(gsSamples[i].Local.Pix, localSamples[i].Local.Pix) {
			t.Errorf("sample %d (%s / %s) differs between the gs:// and the local run", i, gsMetas[i].Key, localMetas[i].Key)
		}
	}
}

// smallConfig is a preset with small crops, for tests that are about the
// plumbing rather than the crop sizes.
func smallConfig(t *testing.T, name, format string) *configs.Config {
	t.Helper()
	c := preset(t, name)
	for k, v := range map[string]string{
		"DATA.FORMAT": format, "MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE": "48", "MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE": "24",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// idxFile builds an IDX file: magic 0x0000080<ndim>, big-endian dims, body.
func idxFile(ndim byte, dims []uint32, body []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, ndim})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(body)
	return b.Bytes()
}

// TestPrepareIDX prepares a small MNIST-style data set (gzip images, raw
// labels) with the Fashion-MNIST preset: grayscale 28x28 records become RGB
// views of 28 and 16 pixels in which R = G = B (no colour operation can
// make a gray image coloured).
func TestPrepareIDX(t *testing.T) {
	const n = 24
	pix := make([]byte, n*28*28)
	for i := range pix {
		pix[i] = byte((i*7 + i/28*13) % 251)
	}
	labels := make([]byte, n)
	for i := range labels {
		labels[i] = byte(i % 3)
	}
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(idxFile(3, []uint32{n, 28, 28}, pix))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte.gz"), gz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), idxFile(1, []uint32{n}, labels), 0o644)

	cfg := preset(t, "dino_fmnist_sslight")
	out := t.TempDir()
	if _, err := Run(context.Background(), Options{Config: cfg, Source: dir, Out: out, Epochs: 1}); err != nil {
		t.Fatal(err)
	}
	m := checkRun(t, out, 1, n, nil)
	metas, samples := readSamples(t, m)
	if len(metas) != n {
		t.Fatalf("%d samples, want %d", len(metas), n)
	}
	for i, meta := range metas {
		var rec int
		fmt.Sscanf(meta.SourceKey[strings.LastIndexByte(meta.SourceKey, '#')+1:], "%d", &rec)
		if meta.Label != rec%3 || meta.Width != 28 || meta.Height != 28 || meta.Format != "idx" {
			t.Errorf("%s: label %d size %dx%d format %s", meta.SourceKey, meta.Label, meta.Width, meta.Height, meta.Format)
		}
		s := samples[i]
		if fmt.Sprint(s.Global.Shape()) != "[2 28 28 3]" || fmt.Sprint(s.Local.Shape()) != "[6 16 16 3]" {
			t.Errorf("shapes %v %v", s.Global.Shape(), s.Local.Shape())
		}
		for _, v := range [][]uint8{s.Global.Pix, s.Local.Pix} {
			for p := 0; p < len(v); p += 3 {
				if v[p] != v[p+1] || v[p] != v[p+2] {
					t.Fatalf("%s: pixel %d is (%d,%d,%d): a gray record became coloured", meta.SourceKey, p/3, v[p], v[p+1], v[p+2])
				}
			}
		}
	}
	pythonReadsShards(t, m, 28, 16, 6)
}

// TestPrepareFashionMNIST runs --format idx on the real Fashion-MNIST files
// of the Debian package dataset-fashion-mnist (the first 300 records).
func TestPrepareFashionMNIST(t *testing.T) {
	const dir = "/usr/share/datasets/fashion-mnist"
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	cfg := preset(t, "dino_fmnist_sslight")
	out := t.TempDir()
	sum, err := Run(context.Background(), Options{Config: cfg, Source: dir, Out: out, Epochs: 1, Limit: 300})
	if err != nil {
		t.Fatal(err)
	}
	m := checkRun(t, out, 1, 300, nil)
	if sum.Samples != 300 || len(m.ClassNames) != 10 || m.ClassNames[9] != "Ankle boot" {
		t.Errorf("samples %d classes %v", sum.Samples, m.ClassNames)
	}
	metas, _ := readSamples(t, m)
	// The first training labels of Fashion-MNIST are 9 0 0 3 0 2 7 2 5 5.
	first := map[string]int{"#000000": 9, "#000001": 0, "#000003": 3, "#000005": 2, "#000006": 7, "#000009": 5}
	for _, meta := range metas {
		for suffix, want := range first {
			if strings.HasSuffix(meta.SourceKey, suffix) && meta.Label != want {
				t.Errorf("%s has label %d, want %d", meta.SourceKey, meta.Label, want)
			}
		}
	}
}

// TestPrepareCOCO prepares a COCO-format set: samples carry their valid
// annotations, refused annotations are counted (not inputs), and a listed
// image whose file is missing is a dead letter.
func TestPrepareCOCO(t *testing.T) {
	photos, _ := filepath.Glob("../../testdata/photos/*.jpg")
	sort.Strings(photos)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "annotations"), 0o755)
	os.MkdirAll(filepath.Join(dir, "val2017"), 0o755)
	for i, p := range photos[:2] {
		b, _ := os.ReadFile(p)
		os.WriteFile(filepath.Join(dir, "val2017", fmt.Sprintf("%012d.jpg", i+1)), b, 0o644)
	}
	ann := `{"images": [
	  {"id": 1, "file_name": "000000000001.jpg", "width": 500, "height": 375},
	  {"id": 2, "file_name": "000000000002.jpg", "width": 500, "height": 375},
	  {"id": 3, "file_name": "000000000003.jpg", "width": 640, "height": 480}],
	 "categories": [{"id": 1, "name": "thing"}, {"id": 7, "name": "other"}],
	 "annotations": [
	  {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 40], "area": 2000, "iscrowd": 0, "segmentation": [[10,10,60,10,60,50]]},
	  {"id": 11, "image_id": 1, "category_id": 7, "bbox": [5, 5, -3, 4], "area": 12, "iscrowd": 0, "segmentation": [[5,5,8,5,8,9]]},
	  {"id": 12, "image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0, "segmentation": [[1,1,3,1,3,3]]},
	  {"id": 13, "image_id": 2, "category_id": 1, "bbox": [480, 10, 60, 40], "area": 2400, "iscrowd": 0, "segmentation": [[480,10,540,10,540,50]]}]}`
	os.WriteFile(filepath.Join(dir, "annotations", "instances_val2017.json"), []byte(ann), 0o644)

	cfg := smallConfig(t, "dino_cnn_sslight", "coco")
	out := t.TempDir()
	sum, err := Run(context.Background(), Options{Config: cfg, Source: dir, Out: out, Epochs: 1, Split: "val2017"})
	if err != nil {
		t.Fatal(err)
	}
	m := checkRun(t, out, 1, 3, map[string]string{"val2017/000000000003.jpg": "missing"})
	if sum.Annotations != 3 || m.AnnotationRejections != 3 {
		t.Errorf("annotation rejections: summary %d manifest %d, want 3 (negative box, unknown image, box outside the image)",
			sum.Annotations, m.AnnotationRejections)
	}
	metas, _ := readSamples(t, m)
	for _, meta := range metas {
		var cm struct {
			ImageID     int `json:"image_id"`
			Annotations []struct {
				ID int `json:"id"`
			} `json:"annotations"`
		}
		if err := json.Unmarshal(meta.Meta, &cm); err != nil {
			t.Fatal(err)
		}
		want := map[int]string{1: "[10]", 2: "[]"}[cm.ImageID]
		var ids []int
		for _, a := range cm.Annotations {
			ids = append(ids, a.ID)
		}
		if got := fmt.Sprint(ids); (want == "[]" && len(ids) != 0) || (want != "[]" && got != want) {
			t.Errorf("image %d carries annotations %v, want %s", cm.ImageID, ids, want)
		}
	}
}

// TestPrepareFolderDirectRunner prepares an unlabelled folder on the legacy
// direct runner, which the design card names for local tests.
func TestPrepareFolderDirectRunner(t *testing.T) {
	f := flag.Lookup("runner")
	if f == nil {
		t.Fatal("no --runner flag registered")
	}
	old := f.Value.String()
	t.Cleanup(func() { f.Value.Set(old) })
	f.Value.Set("direct")

	photos, _ := filepath.Glob("../../testdata/photos/*.jpg")
	dir := t.TempDir()
	for _, p := range photos[:3] {
		b, _ := os.ReadFile(p)
		os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
		os.WriteFile(filepath.Join(dir, "a", "b", filepath.Base(p)), b, 0o644)
	}
	cfg := smallConfig(t, "dino_cnn_baseline", "folder")
	out := t.TempDir()
	sum, err := Run(context.Background(), Options{Config: cfg, Source: dir, Out: out, Epochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Runner != "direct" || sum.Samples != 3 {
		t.Errorf("runner %s samples %d, want direct and 3", sum.Runner, sum.Samples)
	}
	metas, samples := readSamples(t, checkRun(t, out, 1, 3, nil))
	for i, meta := range metas {
		if meta.Label != -1 || samples[i].Local.Count != 6 {
			t.Errorf("%s: label %d, %d local views; want unlabelled with 6", meta.SourceKey, meta.Label, samples[i].Local.Count)
		}
	}
}

func TestPrepareRefusesBadOptions(t *testing.T) {
	cfg := preset(t, "dino_cnn_sslight")
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no source", Options{Config: cfg, Out: t.TempDir(), Epochs: 1}, "no source"},
		{"no epochs", Options{Config: cfg, Source: t.TempDir(), Out: t.TempDir()}, "epochs"},
		{"empty source", Options{Config: cfg, Source: t.TempDir(), Out: t.TempDir(), Epochs: 1}, "class folders"},
	} {
		_, err := Run(context.Background(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestPrepareIDXNotIDX: an images file with a wrong magic cannot give a
// single record; the run records it as one dead input per epoch instead of
// crashing, and writes a manifest that says so.
func TestPrepareIDXNotIDX(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte"), []byte("\xff\xd8\xff\xe0 this is a JPEG header, not IDX"), 0o644)
	out := t.TempDir()
	sum, err := Run(context.Background(), Options{Config: preset(t, "dino_fmnist_sslight"), Source: dir, Out: out, Epochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Samples != 0 || sum.DeadLetters != 2 || sum.Shards != 0 {
		t.Errorf("summary %+v: want 0 samples, 0 shards, 2 dead letters", sum)
	}
	checkRun(t, out, 2, 1, map[string]string{"train-images-idx3-ubyte": "is not IDX"})
}
