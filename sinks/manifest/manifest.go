// Package manifest writes, reads and verifies manifest.json, the record of
// one prepare run: the config (and its hash), seed and epochs, the source
// listing, the shards written with their sizes and CRC32C, and per-epoch
// counts that account for every input (inputs = samples + dead).
//
// The file is deterministic: slices are sorted (shards by epoch then index,
// items by uri, epoch counts by epoch), the config is compacted, there are
// no timestamps of the run itself and no maps. It is streamed out one item
// per line (diffable, and never built as one big buffer) and written
// atomically.
package manifest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/sinks/storage"
)

// SchemaVersion is the manifest layout this package writes and reads.
const SchemaVersion = 1

// FileName is the conventional name of the manifest in a run's output
// folder.
const FileName = "manifest.json"

// What shards hold (Manifest.Emit).
const (
	// EmitViews: every epoch's multi-crop views, pre-rendered.
	EmitViews = "views"
	// EmitImages: decoded images, once (one epoch of shards, Epochs 1),
	// from which the trainer's loader renders each training epoch's
	// views with the same augment code and random keys.
	EmitImages = "images"
)

// Errors Read and Validate return; match them with errors.Is.
var (
	// ErrSchemaVersion: a manifest of another (or no) schema version.
	ErrSchemaVersion = errors.New("manifest: unsupported schema version")
	// ErrInvalid: a manifest whose fields are missing or inconsistent.
	ErrInvalid = errors.New("manifest: invalid")
)

// Manifest describes one prepare run.
type Manifest struct {
	SchemaVersion int    `json:"schema_version"`
	ConfigHash    string `json:"config_hash"`
	// Config is the run's configuration as JSON (an object); it is stored
	// compacted.
	Config json.RawMessage `json:"config"`
	Seed   int64           `json:"seed"`
	Epochs int             `json:"epochs"`
	// Emit says what the shards hold: EmitViews (also "", as manifests
	// written before the field existed say it) or EmitImages.
	Emit string `json:"emit,omitempty"`
	// ImageSize is the shorter side every decoded image with a longer one
	// was shrunk to before views were cut from it or it was stored (0:
	// images at their decoded size).
	ImageSize int    `json:"image_size,omitempty"`
	Source    Source `json:"source"`
	// ClassNames maps Item.Label to a class; empty for unlabelled data.
	ClassNames  []string     `json:"class_names"`
	Shards      []shard.Info `json:"shards"`
	EpochCounts []EpochCount `json:"epoch_counts"`
	// Totals is computed by Write from Shards and EpochCounts, and checked
	// by Read; callers need not fill it.
	Totals Totals `json:"totals"`
	// AnnotationRejections counts annotations (e.g. COCO boxes) dropped
	// while their image was kept; they are not inputs.
	AnnotationRejections int64 `json:"annotation_rejections"`
}

// Source is where the inputs came from, and what was there.
type Source struct {
	Format string `json:"format"` // "imagenet", "coco", "idx", "folder", …
	Root   string `json:"root"`   // root URI as given
	Items  []Item `json:"items"`
}

// Item is one input object of the source listing.
type Item struct {
	URI  string `json:"uri"`
	Key  string `json:"key"` // sample key (see shard.ValidateKey)
	Size int64  `json:"size"`
	// Generation is the GCS object generation; 0 where there is none.
	Generation int64 `json:"generation,omitempty"`
	// ModTime is the object's modification time (written in UTC); zero
	// when unknown.
	ModTime time.Time `json:"mtime,omitzero"`
	// Label indexes ClassNames; -1 for an unlabelled item.
	Label int `json:"label"`
}

// EpochCount accounts for one epoch: every input became a sample or a dead
// letter.
type EpochCount struct {
	Epoch   int   `json:"epoch"`
	Inputs  int64 `json:"inputs"`
	Samples int64 `json:"samples"`
	Dead    int64 `json:"dead"`
}

// Totals sums the run.
type Totals struct {
	Inputs  int64 `json:"inputs"`
	Samples int64 `json:"samples"`
	Dead    int64 `json:"dead"`
	Shards  int   `json:"shards"`
	Bytes   int64 `json:"bytes"`
}

// normalized returns a copy of m ready to write: slices sorted, mtimes in
// UTC, config compacted, totals computed. m itself is not modified.
func (m *Manifest) normalized() (*Manifest, error) {
	n := *m
	n.Shards = slices.Clone(m.Shards)
	slices.SortFunc(n.Shards, func(a, b shard.Info) int {
		return cmp.Or(cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Index, b.Index))
	})
	n.EpochCounts = slices.Clone(m.EpochCounts)
	slices.SortFunc(n.EpochCounts, func(a, b EpochCount) int { return cmp.Compare(a.Epoch, b.Epoch) })
	n.Source.Items = slices.Clone(m.Source.Items)
	for i := range n.Source.Items {
		if t := n.Source.Items[i].ModTime; !t.IsZero() {
			n.Source.Items[i].ModTime = t.UTC()
		}
	}
	slices.SortFunc(n.Source.Items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(a.URI, b.URI), cmp.Compare(a.Key, b.Key))
	})
	if n.ClassNames == nil {
		n.ClassNames = []string{}
	}
	var cfg bytes.Buffer
	if err := json.Compact(&cfg, m.Config); err != nil {
		return nil, fmt.Errorf("%w: config: %w", ErrInvalid, err)
	}
	n.Config = cfg.Bytes()
	n.Totals = sumTotals(n.Shards, n.EpochCounts)
	return &n, nil
}

func sumTotals(shards []shard.Info, counts []EpochCount) Totals {
	var t Totals
	for _, c := range counts {
		t.Inputs += c.Inputs
		t.Samples += c.Samples
		t.Dead += c.Dead
	}
	t.Shards = len(shards)
	for _, s := range shards {
		t.Bytes += s.Bytes
	}
	return t
}

// Validate checks that m is complete and consistent: schema version, config
// hash and config, epochs, what the shards hold, source, labels against class names, every shard
// named and placed as shard.URI would name and place it for this config
// hash, per-epoch counts with inputs = samples + dead and samples equal to
// the shard samples of that epoch, and totals equal to the sums. Errors
// wrap ErrSchemaVersion or ErrInvalid.
func (m *Manifest) Validate() error {
	if m.SchemaVersion != SchemaVersion {
		return fmt.Errorf("%w: %d, want %d", ErrSchemaVersion, m.SchemaVersion, SchemaVersion)
	}
	if err := shard.ValidateConfigHash(m.ConfigHash); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !isObject(m.Config) {
		return fmt.Errorf("%w: config must be a JSON object", ErrInvalid)
	}
	if m.Epochs < 1 {
		return fmt.Errorf("%w: epochs %d", ErrInvalid, m.Epochs)
	}
	switch {
	case m.Emit != "" && m.Emit != EmitViews && m.Emit != EmitImages:
		return fmt.Errorf("%w: emit %q, want %q or %q", ErrInvalid, m.Emit, EmitViews, EmitImages)
	case m.ImageSize < 0:
		return fmt.Errorf("%w: image_size %d", ErrInvalid, m.ImageSize)
	case m.Emit == EmitImages && (m.Epochs != 1 || m.ImageSize == 0):
		return fmt.Errorf("%w: image shards are written once, shrunk to a size: epochs %d (want 1), image_size %d (want > 0)",
			ErrInvalid, m.Epochs, m.ImageSize)
	}
	if m.AnnotationRejections < 0 {
		return fmt.Errorf("%w: negative annotation_rejections", ErrInvalid)
	}
	if err := m.validateSource(); err != nil {
		return err
	}
	perEpoch, err := m.validateShards()
	if err != nil {
		return err
	}
	if len(m.EpochCounts) != m.Epochs {
		return fmt.Errorf("%w: %d epoch counts for %d epochs", ErrInvalid, len(m.EpochCounts), m.Epochs)
	}
	for i, c := range m.EpochCounts {
		switch {
		case c.Epoch != i:
			return fmt.Errorf("%w: epoch_counts[%d] is for epoch %d (want every epoch once, in order)", ErrInvalid, i, c.Epoch)
		case c.Inputs < 0 || c.Samples < 0 || c.Dead < 0:
			return fmt.Errorf("%w: epoch %d: negative count", ErrInvalid, i)
		case c.Inputs != c.Samples+c.Dead:
			return fmt.Errorf("%w: epoch %d: %d inputs but %d samples + %d dead", ErrInvalid, i, c.Inputs, c.Samples, c.Dead)
		case c.Samples != perEpoch[i]:
			return fmt.Errorf("%w: epoch %d: counts say %d samples, its shards hold %d", ErrInvalid, i, c.Samples, perEpoch[i])
		}
	}
	if want := sumTotals(m.Shards, m.EpochCounts); m.Totals != want {
		return fmt.Errorf("%w: totals %+v, the shards and epoch counts sum to %+v", ErrInvalid, m.Totals, want)
	}
	return nil
}

func (m *Manifest) validateSource() error {
	s := m.Source
	if s.Format == "" || s.Root == "" {
		return fmt.Errorf("%w: source needs a format and a root", ErrInvalid)
	}
	uris := make(map[string]struct{}, len(s.Items))
	keys := make(map[string]struct{}, len(s.Items))
	for i, it := range s.Items {
		if it.URI == "" {
			return fmt.Errorf("%w: source item %d: empty uri", ErrInvalid, i)
		}
		if _, dup := uris[it.URI]; dup {
			return fmt.Errorf("%w: source item %s listed twice", ErrInvalid, it.URI)
		}
		uris[it.URI] = struct{}{}
		if err := shard.ValidateKey(it.Key); err != nil {
			return fmt.Errorf("%w: source item %s: %w", ErrInvalid, it.URI, err)
		}
		if _, dup := keys[it.Key]; dup {
			return fmt.Errorf("%w: source item %s: key %q used twice", ErrInvalid, it.URI, it.Key)
		}
		keys[it.Key] = struct{}{}
		if it.Size < 0 || it.Generation < 0 {
			return fmt.Errorf("%w: source item %s: negative size or generation", ErrInvalid, it.URI)
		}
		if it.Label < -1 || it.Label >= len(m.ClassNames) {
			return fmt.Errorf("%w: source item %s: label %d outside [-1, %d)", ErrInvalid, it.URI, it.Label, len(m.ClassNames))
		}
	}
	return nil
}

// validateShards checks each shard and returns the samples per epoch.
func (m *Manifest) validateShards() ([]int64, error) {
	perEpoch := make([]int64, m.Epochs)
	type slot struct{ epoch, index int }
	seen := make(map[slot]struct{}, len(m.Shards))
	for _, s := range m.Shards {
		where := fmt.Sprintf("shard %d of epoch %d", s.Index, s.Epoch)
		switch {
		case s.ConfigHash != m.ConfigHash:
			return nil, fmt.Errorf("%w: %s: config hash %q, manifest has %q", ErrInvalid, where, s.ConfigHash, m.ConfigHash)
		case s.Epoch < 0 || s.Epoch >= m.Epochs || s.Index < 0:
			return nil, fmt.Errorf("%w: %s: outside %d epochs", ErrInvalid, where, m.Epochs)
		case s.Name != shard.Name(m.ConfigHash, s.Epoch, s.Index):
			return nil, fmt.Errorf("%w: %s: name %q, want %q", ErrInvalid, where, s.Name, shard.Name(m.ConfigHash, s.Epoch, s.Index))
		case !placed(s):
			return nil, fmt.Errorf("%w: %s: uri %q is not <out>/epoch-%04d/%s", ErrInvalid, where, s.URI, s.Epoch, s.Name)
		case s.Samples < 1 || s.Bytes < 1:
			return nil, fmt.Errorf("%w: %s: %d samples, %d bytes", ErrInvalid, where, s.Samples, s.Bytes)
		case s.CRC32CBase64 != storage.CRC32CBase64(s.CRC32C):
			return nil, fmt.Errorf("%w: %s: crc32c %08x and crc32c_base64 %q disagree", ErrInvalid, where, s.CRC32C, s.CRC32CBase64)
		}
		k := slot{s.Epoch, s.Index}
		if _, dup := seen[k]; dup {
			return nil, fmt.Errorf("%w: %s listed twice", ErrInvalid, where)
		}
		seen[k] = struct{}{}
		perEpoch[s.Epoch] += int64(s.Samples)
	}
	return perEpoch, nil
}

// placed reports whether s.URI ends in epoch-%04d/<name>, whatever the
// scheme and output root.
func placed(s shard.Info) bool {
	uri := strings.ReplaceAll(s.URI, "\\", "/") // local paths on Windows
	dir, name := path.Split(uri)
	return name == s.Name && path.Base(strings.TrimSuffix(dir, "/")) == fmt.Sprintf("epoch-%04d", s.Epoch)
}

func isObject(raw json.RawMessage) bool {
	var obj map[string]json.RawMessage
	return json.Unmarshal(raw, &obj) == nil && obj != nil
}
