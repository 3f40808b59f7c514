package source

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
)

// TestListGCS lists ImageNet, COCO and IDX layouts from gs:// through an
// in-process GCS emulator, and reads items back through sinks/storage.
func TestListGCS(t *testing.T) {
	srv := gcsemutest.Start(t, "data")
	put := func(name string, data []byte) {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "data", Name: name}, Content: data})
	}
	for rel, data := range imagenetTree(t) {
		put("imagenet/train/"+rel, data)
	}
	put("imagenet/train/n03/", nil)               // a console "folder": no file, no class
	put("imagenet/train2/n09/x.jpg", photo(t, 0)) // a sibling prefix, not under the root
	// Glob and URL characters in object names are just names: the listing
	// is a prefix, and sinks/storage does not parse URIs as URLs.
	put("imagenet/train/n01/[odd] name.jpg", []byte("odd"))
	put("imagenet/train/n02/what?.jpg", []byte("query"))
	put("imagenet/train/n02/a#b 100%.jpg", []byte("fragment, percent"))
	for rel, data := range cocoTree(t) {
		put("coco/"+rel, data)
	}
	put("mnist/train-images-idx3-ubyte.gz", gzipBytes(t, fourImages()))
	put("mnist/train-labels-idx1-ubyte", idxBytes([]uint32{4}, []byte{3, 1, 4, 1}))
	ctx := context.Background()

	l, err := List(ctx, FormatImageNet, "gs://data/imagenet/train/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"n01/README.txt", "n01/[odd] name.jpg", "n01/n01_10.JPEG", "n01/sub/n01_3.JPEG", "n02/a#b 100%.jpg", "n02/n02_7.JPEG", "n02/what?.jpg"}
	if l.Root != "gs://data/imagenet/train" || !slices.Equal(keys(l.Items), want) || !slices.Equal(labels(l.Items), []int{0, 0, 0, 0, 1, 1, 1}) ||
		!slices.Equal(l.Classes, []string{"n01", "n02"}) {
		t.Fatalf("root %s classes %v items %v labels %v", l.Root, l.Classes, keys(l.Items), labels(l.Items))
	}
	if len(l.Rejected) != 1 || l.Rejected[0].URI != "gs://data/imagenet/train/stray.jpg" || !l.Rejected[0].IsItem {
		t.Fatalf("rejected %+v", l.Rejected)
	}
	files := imagenetTree(t)
	files["n01/[odd] name.jpg"], files["n02/what?.jpg"], files["n02/a#b 100%.jpg"] = []byte("odd"), []byte("query"), []byte("fragment, percent")
	for _, it := range l.Items {
		if it.URI != "gs://data/imagenet/train/"+it.Key || it.Size != int64(len(files[it.Key])) || it.MTime == 0 || it.Generation == 0 {
			t.Fatalf("item %+v", it)
		}
		got, err := ReadItem(ctx, it)
		if err != nil || !bytes.Equal(got, files[it.Key]) {
			t.Fatalf("ReadItem(%s): %d bytes, %v", it.URI, len(got), err)
		}
	}

	l, err = List(ctx, FormatCOCO, "gs://data/coco", Options{Split: "val"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys(l.Items), []string{"val/a.jpg", "val/b.jpg", "val/sub/e.jpg"}) || len(l.Rejected) != 10 || l.Inputs() != 6 ||
		l.Rejected[0].URI != "gs://data/coco/val/missing.jpg" {
		t.Fatalf("coco items %v rejected %+v", keys(l.Items), l.Rejected)
	}

	l, err = List(ctx, FormatIDX, "gs://data/mnist", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 4 || !slices.Equal(labels(l.Items), []int{3, 1, 4, 1}) || l.Items[0].URI != "gs://data/mnist/train-images-idx3-ubyte.gz" {
		t.Fatalf("idx items %+v", l.Items)
	}
	recs, err := OpenIDX(ctx, l.Items[2])
	if err != nil {
		t.Fatal(err)
	}
	if g, err := recs.Gray(2); err != nil || g[0] != 20 || g[5] != 25 {
		t.Fatalf("record 2 = %v, %v", g, err)
	}

	if _, err := List(ctx, FormatImageNet, "gs://data/nothing", Options{}); err == nil || !strings.Contains(err.Error(), "no class folders under gs://data/nothing") {
		t.Fatalf("empty prefix: %v", err)
	}
}
