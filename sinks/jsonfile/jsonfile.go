// Package jsonfile writes JSON documents (summary.json, …) and JSON Lines
// files (dead-letter.jsonl, metrics.jsonl, …) atomically through
// sinks/storage, and reads them back strictly.
//
// Output is deterministic for deterministic values: encoding/json sorts map
// keys, struct fields keep their order, and HTML characters are not escaped
// (so URIs with '&' stay readable).
package jsonfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sslight-go/sslight/sinks/storage"
)

// Write atomically replaces uri with v as indented JSON and a final
// newline.
func Write(ctx context.Context, uri string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode %s: %w", uri, err)
	}
	return storage.WriteFile(ctx, uri, buf.Bytes())
}

// Read decodes the JSON document at uri into v, refusing unknown fields and
// trailing data.
func Read(ctx context.Context, uri string, v any) error {
	b, err := storage.ReadFile(ctx, uri)
	if err != nil {
		return err
	}
	if err := Decode(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", uri, err)
	}
	return nil
}

// Decode decodes one JSON document from b into v, refusing unknown fields
// and anything after the document but whitespace.
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON document")
	}
	return nil
}

// LinesWriter streams values into a JSON Lines file, one compact JSON value
// per line, that appears atomically on Commit.
type LinesWriter struct {
	w   *storage.Writer
	enc *json.Encoder
	n   int
}

// CreateLines starts an atomic JSON Lines file at uri.
func CreateLines(ctx context.Context, uri string) (*LinesWriter, error) {
	w, err := storage.Create(ctx, uri)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(w) // Encode ends every value with '\n'
	enc.SetEscapeHTML(false)
	return &LinesWriter{w: w, enc: enc}, nil
}

// Add appends v as one line.
func (l *LinesWriter) Add(v any) error {
	if err := l.enc.Encode(v); err != nil {
		return fmt.Errorf("%s line %d: %w", l.w.URI(), l.n+1, err)
	}
	l.n++
	return nil
}

// Lines returns the number of lines added.
func (l *LinesWriter) Lines() int { return l.n }

// Commit publishes the file.
func (l *LinesWriter) Commit() error { return l.w.Commit() }

// Abort discards the file; a no-op after Commit.
func (l *LinesWriter) Abort() error { return l.w.Abort() }

// WriteLines atomically replaces uri with items, one per line, in the given
// order. An empty slice gives an empty file.
func WriteLines[T any](ctx context.Context, uri string, items []T) error {
	l, err := CreateLines(ctx, uri)
	if err != nil {
		return err
	}
	for i := range items {
		if err := l.Add(&items[i]); err != nil {
			l.Abort()
			return err
		}
	}
	return l.Commit()
}

// ReadLines reads a JSON Lines file written by WriteLines.
func ReadLines[T any](ctx context.Context, uri string) ([]T, error) {
	r, err := storage.Open(ctx, uri)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return DecodeLines[T](r, uri)
}

// MaxLineLen bounds one JSON Lines record.
const MaxLineLen = 16 << 20

// DecodeLines decodes JSON Lines from r: one JSON value per line, no blank
// lines, unknown fields refused; the last line may lack its newline. name
// appears in errors with the line number.
func DecodeLines[T any](r io.Reader, name string) ([]T, error) {
	var out []T
	br := bufio.NewReader(r)
	for line := 1; ; line++ {
		b, err := readLine(br)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		var v T
		if err := Decode(b, &v); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		out = append(out, v)
	}
}

// readLine returns the next line without its newline, or io.EOF at the end.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxLineLen {
			return nil, fmt.Errorf("line longer than %d bytes", MaxLineLen)
		}
		switch {
		case err == nil:
			line = line[:len(line)-1]
			if len(bytes.TrimSpace(line)) == 0 {
				return nil, errors.New("blank line")
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			if len(bytes.TrimSpace(line)) == 0 {
				return nil, errors.New("blank line")
			}
			return line, nil
		default:
			return nil, err
		}
	}
}
