package featurefile

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/safetensors"
)

// TestDecodeReference reads a part written by hand from the safetensors
// specification with numpy (testdata/gen_reference.py), with the data
// section in another order than sslight writes it.
func TestDecodeReference(t *testing.T) {
	b, err := os.ReadFile("testdata/reference.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Decode(b, "reference")
	if err != nil {
		t.Fatal(err)
	}
	want := &Part{Dim: 3, X: []float32{1.5, -2, 0.25, 3, 4, 5}, Labels: []int64{2, -1},
		Keys: []string{"b/x.png", "a/y.png"}, Metadata: map[string]string{"config_hash": "abc123"}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("decoded %+v, want %+v", p, want)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, p := range []*Part{
		{Dim: 2, X: []float32{1, 2, 3, 4}, Labels: []int64{0, 7}, Keys: []string{"a", "b"}, Metadata: map[string]string{"arch": "resnet18"}},
		{Dim: 1, X: []float32{-0.5}, Labels: []int64{-1}, Keys: []string{"ünïcode/\"quoted\" key.png"}},
		{Dim: 4, X: []float32{}, Labels: []int64{}, Keys: []string{}}, // empty parts are representable
	} {
		var buf bytes.Buffer
		if err := Encode(&buf, p); err != nil {
			t.Fatal(err)
		}
		got, err := Decode(buf.Bytes(), "rt")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("round trip: got %+v, want %+v", got, p)
		}
	}
}

// encodeRaw writes a safetensors file with arbitrary tensors and metadata,
// to build malformed parts.
func encodeRaw(t *testing.T, tensors map[string]safetensors.Tensor, order []string, meta map[string]string) []byte {
	t.Helper()
	f := safetensors.NewFile()
	for _, n := range order {
		if err := f.Add(n, tensors[n]); err != nil {
			t.Fatal(err)
		}
	}
	f.Metadata = meta
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeRejects(t *testing.T) {
	feat := safetensors.Tensor{DType: safetensors.F32, Shape: []int{2, 1}, F32: []float32{1, 2}}
	lab := safetensors.Tensor{DType: safetensors.I64, Shape: []int{2}, I64: []int64{0, 1}}
	okMeta := map[string]string{FormatMetadata: FormatName, KeysMetadata: `["a","b"]`}
	both := map[string]safetensors.Tensor{FeaturesTensor: feat, LabelsTensor: lab}
	order := []string{FeaturesTensor, LabelsTensor}
	with := func(name string, tt safetensors.Tensor) map[string]safetensors.Tensor {
		m := map[string]safetensors.Tensor{FeaturesTensor: feat, LabelsTensor: lab}
		m[name] = tt
		return m
	}
	meta := func(k, v string) map[string]string {
		m := map[string]string{FormatMetadata: FormatName, KeysMetadata: `["a","b"]`}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not safetensors", []byte("hello"), "bad format"},
		{"no format", encodeRaw(t, both, order, meta(FormatMetadata, "")), "metadata format"},
		{"other format", encodeRaw(t, both, order, meta(FormatMetadata, "sslight-features/v9")), "metadata format"},
		{"missing labels", encodeRaw(t, both, order[:1], okMeta), "1 tensors"},
		{"extra tensor", encodeRaw(t, with("extra", lab), append(order, "extra"), okMeta), "3 tensors"},
		{"features as I64", encodeRaw(t, with(FeaturesTensor, lab), order, okMeta), `"features" F32`},
		{"features 1-D", encodeRaw(t, with(FeaturesTensor, safetensors.Tensor{DType: safetensors.F32, Shape: []int{2}, F32: []float32{1, 2}}), order, okMeta), `"features" F32`},
		{"labels count", encodeRaw(t, with(LabelsTensor, safetensors.Tensor{DType: safetensors.I64, Shape: []int{1}, I64: []int64{0}}), order, okMeta), `"labels" I64 [2]`},
		{"labels as F32", encodeRaw(t, with(LabelsTensor, feat), order, okMeta), `"labels" I64`},
		{"keys missing", encodeRaw(t, both, order, meta(KeysMetadata, "")), "not a JSON array"},
		{"keys not strings", encodeRaw(t, both, order, meta(KeysMetadata, `[1,2]`)), "not a JSON array"},
		{"keys count", encodeRaw(t, both, order, meta(KeysMetadata, `["a"]`)), "1 keys for 2"},
		{"duplicate key", encodeRaw(t, both, order, meta(KeysMetadata, `["a","a"]`)), "appears twice"},
		{"label below -1", encodeRaw(t, with(LabelsTensor, safetensors.Tensor{DType: safetensors.I64, Shape: []int{2}, I64: []int64{0, -2}}), order, okMeta), "label -2"},
		{"NaN feature", encodeRaw(t, with(FeaturesTensor, safetensors.Tensor{DType: safetensors.F32, Shape: []int{2, 1}, F32: []float32{1, float32(nan())}}), order, okMeta), "NaN"},
	} {
		_, err := Decode(tc.data, "part.safetensors")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "part.safetensors") {
			t.Errorf("%s: err %v, want one naming the file and containing %q", tc.name, err, tc.want)
		}
	}
}

func nan() float64 {
	var z float64
	return z / z
}

func TestEncodeRejectsReservedMetadata(t *testing.T) {
	p := &Part{Dim: 1, X: []float32{1}, Labels: []int64{0}, Keys: []string{"a"}, Metadata: map[string]string{KeysMetadata: "x"}}
	if err := Encode(&bytes.Buffer{}, p); !errors.Is(err, ErrFormat) {
		t.Errorf("Encode with reserved metadata: %v, want ErrFormat", err)
	}
}

func TestPartName(t *testing.T) {
	if got := PartName(3, 8); got != "part-00003-of-00008.safetensors" {
		t.Errorf("PartName(3, 8) = %q", got)
	}
}

// writeRun writes parts and an index like the pipeline does.
func writeRun(t *testing.T, out string, parts []*Part) *Index {
	t.Helper()
	ctx := context.Background()
	ix := &Index{SchemaVersion: SchemaVersion, Dim: parts[0].Dim, Model: ModelInfo{Mode: ModeRawPixels},
		Transform: TransformInfo{Resize: 32, Crop: 28}, Source: SourceInfo{Format: "idx", Root: "/x"}}
	for i, p := range parts {
		fi, err := WritePart(ctx, out, PartName(i, len(parts)), p)
		if err != nil {
			t.Fatal(err)
		}
		ix.Files = append(ix.Files, fi)
		ix.Samples += int64(p.Len())
	}
	ix.DeadLetters = 1
	ix.Inputs = ix.Samples + 1
	if err := WriteIndex(ctx, out, ix); err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestReadAllSortsByKey(t *testing.T) {
	out := t.TempDir()
	writeRun(t, out, []*Part{
		{Dim: 2, X: []float32{1, 1, 3, 3}, Labels: []int64{1, 3}, Keys: []string{"k1", "k3"}},
		{Dim: 2, X: []float32{0, 0, 2, 2}, Labels: []int64{0, 2}, Keys: []string{"k0", "k2"}},
	})
	all, ix, err := ReadAll(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	want := &Part{Dim: 2, X: []float32{0, 0, 1, 1, 2, 2, 3, 3}, Labels: []int64{0, 1, 2, 3}, Keys: []string{"k0", "k1", "k2", "k3"}}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("ReadAll = %+v, want %+v", all, want)
	}
	if ix.Samples != 4 || ix.Inputs != 5 || len(ix.Files) != 2 {
		t.Errorf("index %+v", ix)
	}
}

func TestReadAllDetectsDamage(t *testing.T) {
	ctx := context.Background()
	t.Run("flipped byte", func(t *testing.T) {
		out := t.TempDir()
		ix := writeRun(t, out, []*Part{{Dim: 1, X: []float32{1}, Labels: []int64{0}, Keys: []string{"a"}}})
		p := filepath.Join(out, FilesDir, ix.Files[0].Name)
		b, _ := os.ReadFile(p)
		b[len(b)-1] ^= 1
		os.WriteFile(p, b, 0o644)
		if _, _, err := ReadAll(ctx, out); err == nil || !strings.Contains(err.Error(), "CRC32C") {
			t.Errorf("damaged part: err %v, want a CRC32C mismatch", err)
		}
	})
	t.Run("key in two parts", func(t *testing.T) {
		out := t.TempDir()
		writeRun(t, out, []*Part{
			{Dim: 1, X: []float32{1}, Labels: []int64{0}, Keys: []string{"a"}},
			{Dim: 1, X: []float32{2}, Labels: []int64{0}, Keys: []string{"a"}},
		})
		if _, _, err := ReadAll(ctx, out); err == nil || !strings.Contains(err.Error(), "two parts") {
			t.Errorf("duplicate key: err %v", err)
		}
	})
	t.Run("missing part", func(t *testing.T) {
		out := t.TempDir()
		ix := writeRun(t, out, []*Part{{Dim: 1, X: []float32{1}, Labels: []int64{0}, Keys: []string{"a"}}})
		os.Remove(filepath.Join(out, FilesDir, ix.Files[0].Name))
		if _, _, err := ReadAll(ctx, out); err == nil {
			t.Error("missing part: no error")
		}
	})
	t.Run("no index", func(t *testing.T) {
		if _, _, err := ReadAll(ctx, t.TempDir()); err == nil {
			t.Error("no index: no error")
		}
	})
}

func TestIndexValidate(t *testing.T) {
	good := func() *Index {
		return &Index{SchemaVersion: SchemaVersion, Dim: 3, Model: ModelInfo{Mode: ModeCheckpoint},
			Inputs: 5, Samples: 4, DeadLetters: 1,
			Files: []FileInfo{{Name: "a", Samples: 1, Bytes: 10}, {Name: "b", Samples: 3, Bytes: 10}}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid index refused: %v", err)
	}
	for _, tc := range []struct {
		name   string
		modify func(*Index)
		want   string
	}{
		{"schema", func(ix *Index) { ix.SchemaVersion = 2 }, "schema_version"},
		{"dim", func(ix *Index) { ix.Dim = 0 }, "dim 0"},
		{"mode", func(ix *Index) { ix.Model.Mode = "magic" }, `mode "magic"`},
		{"lost input", func(ix *Index) { ix.Inputs = 6 }, "6 inputs"},
		{"sum", func(ix *Index) { ix.Files[1].Samples = 2 }, "files hold 3"},
		{"order", func(ix *Index) { ix.Files[0].Name = "c" }, "not sorted"},
		{"duplicate", func(ix *Index) { ix.Files[1].Name = "a" }, "not sorted"},
		{"empty file", func(ix *Index) { ix.Files[0].Samples = 0 }, "samples ≥ 1"},
	} {
		ix := good()
		tc.modify(ix)
		if err := ix.Validate(); err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want ErrFormat containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := ParseIndex([]byte(`{"schema_version":1,"dim":1,"model":{"mode":"raw_pixels"},"inputs":0,"samples":0,"dead_letters":0,"files":[],"extra":1}`)); err == nil {
		t.Error("ParseIndex accepted an unknown field")
	}
}
