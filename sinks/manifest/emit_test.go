package manifest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/storage"
)

// imagesExample is example() as the manifest of image shards: one epoch,
// shrunk to 256.
func imagesExample() *Manifest {
	m := example()
	m.Epochs, m.Emit, m.ImageSize = 1, EmitImages, 256
	m.Shards = m.Shards[1:] // epoch 0's two shards
	m.EpochCounts = m.EpochCounts[1:]
	return m
}

// TestEmitWrittenOnlyWhenSet: a manifest of image shards says so right
// after "epochs", and reads back equal; one of full-size views keeps the
// layout it always had (TestWriteExactLayout holds its bytes).
func TestEmitWrittenOnlyWhenSet(t *testing.T) {
	ctx := context.Background()
	uri := "memfs://manifest/emit/" + FileName
	if err := Write(ctx, uri, imagesExample()); err != nil {
		t.Fatal(err)
	}
	b, err := storage.ReadFile(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if want := "  \"epochs\": 1,\n  \"emit\": \"images\",\n  \"image_size\": 256,\n  \"source\": {"; !strings.Contains(string(b), want) {
		t.Errorf("manifest lacks %q:\n%s", want, b)
	}
	got, err := Read(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if got.Emit != EmitImages || got.ImageSize != 256 {
		t.Errorf("read back emit %q image_size %d", got.Emit, got.ImageSize)
	}
	views := example()
	views.Emit = EmitViews
	views.ImageSize = 128 // views cut from images shrunk first
	if err := Write(ctx, uri, views); err != nil {
		t.Fatal(err)
	}
	again, err := Read(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := views.normalized()
	if !reflect.DeepEqual(again, n) {
		t.Errorf("views manifest with image_size did not round-trip:\n%+v\nwant\n%+v", again, n)
	}
}

func TestEmitValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Manifest)
	}{
		{"unknown emit", func(m *Manifest) { m.Emit = "pixels" }},
		{"negative image size", func(m *Manifest) { m.ImageSize = -1 }},
		{"images over two epochs", func(m *Manifest) { *m = *example(); m.Emit, m.ImageSize = EmitImages, 256 }},
		{"images at no size", func(m *Manifest) { m.ImageSize = 0 }},
	} {
		m := imagesExample()
		c.edit(m)
		n, err := m.normalized()
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate() = %v, want ErrInvalid", c.name, err)
		}
	}
	n, _ := imagesExample().normalized()
	if err := n.Validate(); err != nil {
		t.Errorf("images manifest: %v", err)
	}
}
