package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// MaxHeaderLen bounds the JSON header so a corrupt length field cannot make
// the reader allocate gigabytes (the reference library uses the same 100 MB).
const MaxHeaderLen = 100 << 20

// headerEntry is one tensor's header record.
type headerEntry struct {
	DType       DType   `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Decode parses a whole safetensors file held in memory.
func Decode(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, need at least the 8-byte header length", ErrFormat, len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderLen || n > uint64(len(data)-8) {
		return nil, fmt.Errorf("%w: header length %d exceeds the file (%d bytes) or the limit", ErrFormat, n, len(data))
	}
	names, entries, meta, err := parseHeader(data[8 : 8+n])
	if err != nil {
		return nil, err
	}
	body := data[8+n:]
	if err := checkOffsets(names, entries, int64(len(body))); err != nil {
		return nil, err
	}
	f := &File{Names: names, Tensors: make(map[string]Tensor, len(names)), Metadata: meta}
	for _, name := range names {
		e := entries[name]
		raw := body[e.DataOffsets[0]:e.DataOffsets[1]]
		t := Tensor{DType: e.DType, Shape: e.Shape}
		switch e.DType {
		case F32:
			t.F32 = make([]float32, len(raw)/4)
			for i := range t.F32 {
				t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		case I64:
			t.I64 = make([]int64, len(raw)/8)
			for i := range t.I64 {
				t.I64[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		}
		f.Tensors[name] = t
	}
	return f, nil
}

// Read reads a whole safetensors stream.
func Read(r io.Reader) (*File, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read: %w", err)
	}
	return Decode(data)
}

// ReadFile reads a local .safetensors file.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return f, nil
}

// parseHeader parses the JSON header (without the 8-byte length) and returns
// the tensor names in file order, their records and the metadata. It checks
// each record on its own (dtype, shape, offsets matching the byte count) but
// not the records against each other or the data size; Decode does that.
func parseHeader(b []byte) (names []string, entries map[string]headerEntry, meta map[string]string, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, nil, fmt.Errorf("%w: header is not a JSON object", ErrFormat)
	}
	entries = map[string]headerEntry{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, nil, fmt.Errorf("%w: header key %v is not a string", ErrFormat, tok)
		}
		if name == "__metadata__" {
			if meta != nil {
				return nil, nil, nil, fmt.Errorf("%w: duplicate __metadata__", ErrFormat)
			}
			meta = map[string]string{}
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrFormat, err)
			}
			continue
		}
		if _, dup := entries[name]; dup {
			return nil, nil, nil, fmt.Errorf("%w: tensor %q listed twice", ErrFormat, name)
		}
		var e headerEntry
		if err := dec.Decode(&e); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		if err := checkEntry(e); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		names = append(names, name)
		entries[name] = e
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	// Only the space padding may follow the object.
	rest := b[dec.InputOffset():]
	if len(bytes.Trim(rest, " ")) != 0 {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes after the header object are not space padding", ErrFormat, len(rest))
	}
	return names, entries, meta, nil
}

func checkEntry(e headerEntry) error {
	size := e.DType.ItemSize()
	if size == 0 {
		return fmt.Errorf("unsupported dtype %q", e.DType)
	}
	if e.Shape == nil {
		return fmt.Errorf("missing shape")
	}
	if len(e.DataOffsets) != 2 {
		return fmt.Errorf("data_offsets must hold 2 numbers, has %d", len(e.DataOffsets))
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin < 0 || end < begin {
		return fmt.Errorf("bad data_offsets [%d, %d]", begin, end)
	}
	n := int64(1)
	for _, d := range e.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in shape %v", e.Shape)
		}
		if d > 0 && n > (math.MaxInt64/8)/int64(d) {
			return fmt.Errorf("shape %v too large", e.Shape)
		}
		n *= int64(d)
	}
	if n*int64(size) != end-begin {
		return fmt.Errorf("shape %v of %s needs %d bytes, data_offsets span %d", e.Shape, e.DType, n*int64(size), end-begin)
	}
	return nil
}

// checkOffsets verifies that the tensors tile the data section exactly:
// no gaps, no overlaps, nothing past its end.
func checkOffsets(names []string, entries map[string]headerEntry, size int64) error {
	spans := make([][2]int64, 0, len(names))
	for _, name := range names {
		o := entries[name].DataOffsets
		spans = append(spans, [2]int64{o[0], o[1]})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i][0] != spans[j][0] {
			return spans[i][0] < spans[j][0]
		}
		return spans[i][1] < spans[j][1]
	})
	pos := int64(0)
	for _, s := range spans {
		if s[0] != pos {
			return fmt.Errorf("%w: tensor data at [%d, %d] does not continue at byte %d (gap or overlap)", ErrFormat, s[0], s[1], pos)
		}
		pos = s[1]
	}
	if pos != size {
		return fmt.Errorf("%w: tensors cover %d data bytes, file holds %d", ErrFormat, pos, size)
	}
	return nil
}
