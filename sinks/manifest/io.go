package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/sinks/storage"
)

// Write validates m and atomically writes it to uri. It writes a normalized
// copy (sorted slices, UTC times, compact config, computed totals) and
// leaves m as it was.
func Write(ctx context.Context, uri string, m *Manifest) error {
	n, err := m.normalized()
	if err != nil {
		return fmt.Errorf("manifest %s: %w", uri, err)
	}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("manifest %s: %w", uri, err)
	}
	w, err := storage.Create(ctx, uri)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := n.encode(w); err != nil {
		w.Abort()
		return fmt.Errorf("manifest %s: %w", uri, err)
	}
	return w.Commit()
}

// encoder writes JSON values and literal text, remembering the first
// error so the layout code reads straight through.
type encoder struct {
	w   io.Writer
	buf bytes.Buffer
	enc *json.Encoder
	err error
}

func newEncoder(w io.Writer) *encoder {
	e := &encoder{w: w}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

func (e *encoder) text(s string) {
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

// value writes v as compact JSON.
func (e *encoder) value(v any) {
	if e.err != nil {
		return
	}
	e.buf.Reset()
	if e.err = e.enc.Encode(v); e.err != nil {
		return
	}
	_, e.err = e.w.Write(bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")))
}

// field writes `<indent>"name": <value>` and a comma unless last.
func (e *encoder) field(indent, name string, v any, last bool) {
	e.text(indent + `"` + name + `": `)
	e.value(v)
	e.comma(last)
}

func (e *encoder) comma(last bool) {
	if last {
		e.text("\n")
	} else {
		e.text(",\n")
	}
}

// list writes a field whose value is a JSON array with one element per
// line: diffable, and streamed rather than built in memory.
func list[T any](e *encoder, indent, name string, items []T, last bool) {
	if len(items) == 0 {
		e.field(indent, name, []T{}, last)
		return
	}
	e.text(indent + `"` + name + "\": [\n")
	for i := range items {
		e.text(indent + "  ")
		e.value(&items[i])
		e.comma(i == len(items)-1)
	}
	e.text(indent + "]")
	e.comma(last)
}

func (m *Manifest) encode(w io.Writer) error {
	e := newEncoder(w)
	e.text("{\n")
	e.field("  ", "schema_version", m.SchemaVersion, false)
	e.field("  ", "config_hash", m.ConfigHash, false)
	e.field("  ", "config", m.Config, false)
	e.field("  ", "seed", m.Seed, false)
	e.field("  ", "epochs", m.Epochs, false)
	// Written only when set, so manifests of views at full size read as
	// they always have.
	if m.Emit != "" {
		e.field("  ", "emit", m.Emit, false)
	}
	if m.ImageSize != 0 {
		e.field("  ", "image_size", m.ImageSize, false)
	}
	e.text("  \"source\": {\n")
	e.field("    ", "format", m.Source.Format, false)
	e.field("    ", "root", m.Source.Root, false)
	list(e, "    ", "items", m.Source.Items, true)
	e.text("  },\n")
	e.field("  ", "class_names", m.ClassNames, false)
	list(e, "  ", "shards", m.Shards, false)
	list(e, "  ", "epoch_counts", m.EpochCounts, false)
	e.field("  ", "totals", m.Totals, false)
	e.field("  ", "annotation_rejections", m.AnnotationRejections, true)
	e.text("}\n")
	return e.err
}

// Read reads and validates the manifest at uri.
func Read(ctx context.Context, uri string) (*Manifest, error) {
	b, err := storage.ReadFile(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", uri, err)
	}
	return m, nil
}

// Parse decodes and validates a manifest. The schema version is checked
// first, so a manifest from a newer sslight fails with ErrSchemaVersion
// rather than with its first unknown field.
func Parse(b []byte) (*Manifest, error) {
	var probe struct {
		SchemaVersion json.RawMessage `json:"schema_version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if probe.SchemaVersion == nil {
		return nil, fmt.Errorf("%w: no schema_version", ErrSchemaVersion)
	}
	var v int
	if err := json.Unmarshal(probe.SchemaVersion, &v); err != nil || v != SchemaVersion {
		return nil, fmt.Errorf("%w: schema_version %s, want %d", ErrSchemaVersion, probe.SchemaVersion, SchemaVersion)
	}
	var m Manifest
	if err := jsonfile.Decode(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Verify re-reads every shard, checking its structure, its sample count and
// that its size and CRC32C match the manifest. It reports every bad shard
// (errors.Join), each error naming the shard and wrapping shard.ErrCorrupt,
// shard.ErrMismatch, ErrInvalid (wrong count) or fs.ErrNotExist.
func (m *Manifest) Verify(ctx context.Context) error {
	var errs []error
	var s shard.Sample // reused across shards: one sample's memory in all
	for _, info := range m.Shards {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := verifyShard(ctx, info, &s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func verifyShard(ctx context.Context, info shard.Info, s *shard.Sample) error {
	r, err := shard.Open(ctx, info.URI, &shard.Expect{Bytes: info.Bytes, CRC32C: info.CRC32C})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		err := r.Next(s)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if r.Samples() != info.Samples {
		return fmt.Errorf("shard %s: %w: holds %d samples, manifest says %d", info.URI, ErrInvalid, r.Samples(), info.Samples)
	}
	return nil
}
