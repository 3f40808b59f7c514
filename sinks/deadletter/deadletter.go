// Package deadletter records the inputs a run could not turn into samples,
// in dead-letter.jsonl: one JSON object per line,
//
//	{"uri":"gs://b/x.jpg","stage":"decode","error":"…","epoch":0,"key":"x"}
//
// with epoch and key present only when known. The file is sorted (epoch,
// stage, uri, key, error; records without an epoch first), so the same
// failures give the same bytes whatever order workers reported them in, and
// it is written atomically.
package deadletter

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/storage"
)

// FileName is the conventional name of the dead-letter file in a run's
// output folder.
const FileName = "dead-letter.jsonl"

// Record is one input that did not make it, and why.
type Record struct {
	URI   string `json:"uri"`             // the input object
	Stage string `json:"stage"`           // where it failed: "list", "read", "decode", "crop", …
	Error string `json:"error"`           // the reason, for people
	Epoch *int   `json:"epoch,omitempty"` // nil when the failure is not tied to an epoch
	Key   string `json:"key,omitempty"`   // sample key, when one was assigned
}

// Epoch returns a pointer to e, for Record.Epoch.
func Epoch(e int) *int { return &e }

// ErrInvalid marks a record missing a required field.
var ErrInvalid = errors.New("deadletter: invalid record")

// Validate checks that r has a URI, a stage and an error, and a
// non-negative epoch if any.
func (r *Record) Validate() error {
	switch {
	case r.URI == "":
		return fmt.Errorf("%w: empty uri", ErrInvalid)
	case r.Stage == "":
		return fmt.Errorf("%w: %s: empty stage", ErrInvalid, r.URI)
	case r.Error == "":
		return fmt.Errorf("%w: %s: empty error", ErrInvalid, r.URI)
	case r.Epoch != nil && *r.Epoch < 0:
		return fmt.Errorf("%w: %s: negative epoch %d", ErrInvalid, r.URI, *r.Epoch)
	}
	return nil
}

// Compare orders records by epoch (none first), stage, uri, key, then
// error text.
func Compare(a, b Record) int {
	switch {
	case a.Epoch == nil && b.Epoch != nil:
		return -1
	case a.Epoch != nil && b.Epoch == nil:
		return 1
	case a.Epoch != nil && *a.Epoch != *b.Epoch:
		return cmp.Compare(*a.Epoch, *b.Epoch)
	}
	if c := cmp.Compare(a.Stage, b.Stage); c != 0 {
		return c
	}
	if c := cmp.Compare(a.URI, b.URI); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	return cmp.Compare(a.Error, b.Error)
}

// Write atomically replaces uri with records, validated and sorted (the
// caller's slice is left as it was). No records give an empty file, which
// says "nothing was lost" more clearly than a missing one.
func Write(ctx context.Context, uri string, records []Record) error {
	sorted := slices.Clone(records)
	for i := range sorted {
		if err := sorted[i].Validate(); err != nil {
			return fmt.Errorf("dead letters %s: record %d: %w", uri, i, err)
		}
	}
	slices.SortStableFunc(sorted, Compare)
	return jsonfile.WriteLines(ctx, uri, sorted)
}

// Read reads and validates a dead-letter file.
func Read(ctx context.Context, uri string) ([]Record, error) {
	b, err := storage.ReadFile(ctx, uri)
	if err != nil {
		return nil, err
	}
	return Parse(bytes.NewReader(b), uri)
}

// Parse decodes dead-letter JSON Lines from r; name appears in errors. Every
// record must be valid and the records sorted as Write sorts them.
func Parse(r io.Reader, name string) ([]Record, error) {
	records, err := jsonfile.DecodeLines[Record](r, name)
	if err != nil {
		return nil, err
	}
	for i := range records {
		if err := records[i].Validate(); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, i+1, err)
		}
		if i > 0 && Compare(records[i-1], records[i]) > 0 {
			return nil, fmt.Errorf("%s line %d: %w: records out of order", name, i+1, ErrInvalid)
		}
	}
	return records, nil
}
