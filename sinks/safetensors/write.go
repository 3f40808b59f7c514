package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
)

// Encode writes f to w: header in f.Names order, data contiguous in the same
// order.
func Encode(w io.Writer, f *File) error {
	header, err := appendHeader(nil, f)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	if _, err := bw.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("safetensors: write header length: %w", err)
	}
	if _, err := bw.Write(header); err != nil {
		return fmt.Errorf("safetensors: write header: %w", err)
	}
	var buf [8]byte
	for _, name := range f.Names {
		t := f.Tensors[name]
		switch t.DType {
		case F32:
			for _, v := range t.F32 {
				binary.LittleEndian.PutUint32(buf[:4], math.Float32bits(v))
				if _, err := bw.Write(buf[:4]); err != nil {
					return fmt.Errorf("safetensors: write %q: %w", name, err)
				}
			}
		case I64:
			for _, v := range t.I64 {
				binary.LittleEndian.PutUint64(buf[:], uint64(v))
				if _, err := bw.Write(buf[:]); err != nil {
					return fmt.Errorf("safetensors: write %q: %w", name, err)
				}
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

// WriteFile writes f to a local path through a temporary file renamed into
// place, so a reader never sees a partial checkpoint.
func WriteFile(path string, f *File) error {
	tmp, err := os.CreateTemp(dirOf(path), ".safetensors-*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := Encode(tmp, f); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			if i == 0 {
				return "/"
			}
			return path[:i]
		}
	}
	return "."
}

// appendHeader builds the JSON header padded with spaces to a multiple of 8.
func appendHeader(dst []byte, f *File) ([]byte, error) {
	if len(f.Names) != len(f.Tensors) {
		return nil, fmt.Errorf("safetensors: %d names for %d tensors", len(f.Names), len(f.Tensors))
	}
	dst = append(dst, '{')
	offset := int64(0)
	for i, name := range f.Names {
		t, ok := f.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("safetensors: name %q has no tensor", name)
		}
		if err := checkTensor(t); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		if name == "__metadata__" {
			return nil, fmt.Errorf("safetensors: tensor name %q is reserved", name)
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		key, _ := json.Marshal(name)
		dst = append(dst, key...)
		dst = append(dst, `:{"dtype":"`...)
		dst = append(dst, t.DType...)
		dst = append(dst, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(d), 10)
		}
		end := offset + int64(t.NumElements()*t.DType.ItemSize())
		dst = append(dst, `],"data_offsets":[`...)
		dst = strconv.AppendInt(dst, offset, 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, end, 10)
		dst = append(dst, "]}"...)
		offset = end
	}
	if len(f.Metadata) > 0 {
		if len(f.Names) > 0 {
			dst = append(dst, ',')
		}
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, `"__metadata__":{`...)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			kb, _ := json.Marshal(k)
			vb, _ := json.Marshal(f.Metadata[k])
			dst = append(dst, kb...)
			dst = append(dst, ':')
			dst = append(dst, vb...)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, '}')
	for len(dst)%8 != 0 {
		dst = append(dst, ' ')
	}
	return dst, nil
}
