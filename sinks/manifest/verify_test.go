package manifest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/sinks/storage"
)

// writeRun writes a real two-epoch run under out: shards of 2 and 1 samples
// per epoch, and its manifest. It returns the manifest URI.
func writeRun(t *testing.T, out string) string {
	t.Helper()
	ctx := context.Background()
	m := &Manifest{
		SchemaVersion: SchemaVersion,
		ConfigHash:    testHash,
		Config:        json.RawMessage(`{"SEED":0}`),
		Epochs:        2,
		Source:        Source{Format: "folder", Root: "gs://in"},
	}
	for epoch := 0; epoch < 2; epoch++ {
		for index, n := range []int{2, 1} {
			w, err := shard.Create(ctx, out, testHash, epoch, index)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				pix := func(n int) []uint8 {
					p := make([]uint8, n)
					for j := range p {
						p[j] = uint8(j + i + epoch)
					}
					return p
				}
				err := w.Add(&shard.Sample{
					Key:    fmt.Sprintf("k%d-%d", index, i),
					Meta:   []byte(`{}`),
					Global: shard.Views{Count: 2, Height: 4, Width: 4, Pix: pix(2 * 4 * 4 * 3)},
					Local:  shard.Views{Count: 1, Height: 2, Width: 2, Pix: pix(2 * 2 * 3)},
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			info, err := w.Close()
			if err != nil {
				t.Fatal(err)
			}
			m.Shards = append(m.Shards, info)
		}
		m.EpochCounts = append(m.EpochCounts, EpochCount{Epoch: epoch, Inputs: 4, Samples: 3, Dead: 1})
	}
	uri := storage.Join(out, FileName)
	if err := Write(ctx, uri, m); err != nil {
		t.Fatal(err)
	}
	return uri
}

func TestVerifyLocal(t *testing.T) {
	ctx := context.Background()
	uri := writeRun(t, t.TempDir())
	m, err := Read(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(ctx); err != nil {
		t.Fatalf("intact run: %v", err)
	}

	// Damage: flip a pixel of one shard, delete another, lie about the
	// sample count of a third.
	flipped, deleted := m.Shards[0].URI, m.Shards[1].URI
	b, _ := os.ReadFile(flipped)
	b[len(b)-1024-40] ^= 1 // inside the last member's data or padding
	os.WriteFile(flipped, b, 0o644)
	os.Remove(deleted)
	m.Shards[2].Samples++

	err = m.Verify(ctx)
	if !errors.Is(err, shard.ErrMismatch) || !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Verify = %v; want a mismatch, a missing file and a wrong count", err)
	}
	for _, u := range []string{flipped, deleted, m.Shards[2].URI} {
		if !strings.Contains(err.Error(), u) {
			t.Errorf("error does not name %s", u)
		}
	}
	if strings.Contains(err.Error(), m.Shards[3].URI) {
		t.Errorf("intact shard %s reported", m.Shards[3].URI)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Verify(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Verify = %v", err)
	}
}

func TestVerifyGCS(t *testing.T) {
	gcsemutest.Start(t, "runs")
	ctx := context.Background()
	uri := writeRun(t, "gs://runs/prepare")
	if uri != "gs://runs/prepare/manifest.json" {
		t.Fatalf("manifest at %s", uri)
	}
	m, err := Read(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Shards) != 4 || !strings.HasPrefix(m.Shards[0].URI, "gs://runs/prepare/epoch-0000/") {
		t.Fatalf("shards %+v", m.Shards)
	}
	if err := m.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
