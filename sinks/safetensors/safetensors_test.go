package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// small.safetensors was written by Python's struct and json modules from the
// format description alone (see the commit that added it), so it is an
// independent expectation for the reader.
const smallFixture = "../../testdata/safetensors/small.safetensors"

func TestReadFileIndependentFixture(t *testing.T) {
	f, err := ReadFile(smallFixture)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"conv.weight", "bn.num_batches_tracked", "bn.running_var"}
	if !reflect.DeepEqual(f.Names, wantNames) {
		t.Fatalf("names %v, want %v (file order)", f.Names, wantNames)
	}
	tests := []struct {
		name string
		want Tensor
	}{
		{"conv.weight", Tensor{DType: F32, Shape: []int{2, 1, 1, 2}, F32: []float32{1.5, -2, 0.25, 3}}},
		{"bn.num_batches_tracked", Tensor{DType: I64, Shape: []int{}, I64: []int64{100}}},
		{"bn.running_var", Tensor{DType: F32, Shape: []int{3}, F32: []float32{0.5, 1, 2}}},
	}
	for _, tc := range tests {
		if got := f.Tensors[tc.name]; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v, want format=pt", f.Metadata)
	}
}

func TestEncodeRoundTripAndLayout(t *testing.T) {
	orig, err := ReadFile(smallFixture)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, orig); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	header := string(b[8 : 8+n])
	// The data section must be the same bytes the Python writer produced.
	want, _ := os.ReadFile(smallFixture)
	wn := binary.LittleEndian.Uint64(want)
	if !bytes.Equal(b[8+n:], want[8+wn:]) {
		t.Errorf("data section differs from the independent writer's")
	}
	if !strings.HasPrefix(header, `{"conv.weight":{"dtype":"F32","shape":[2,1,1,2],"data_offsets":[0,16]}`) {
		t.Errorf("header does not start with conv.weight in order: %s", header)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, orig) {
		t.Errorf("round trip changed the file:\n got %+v\nwant %+v", back, orig)
	}
}

func TestWriteFileEmptyAndScalar(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	f := NewFile()
	if err := f.Add("a", Tensor{DType: F32, Shape: []int{0, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Add("s", Tensor{DType: I64, Shape: []int{}, I64: []int64{-7}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	g, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if g.Tensors["s"].I64[0] != -7 || len(g.Tensors["a"].F32) != 0 || !reflect.DeepEqual(g.Tensors["a"].Shape, []int{0, 3}) {
		t.Errorf("got %+v", g.Tensors)
	}
}

func TestAddRejects(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
	}{
		{"short data", Tensor{DType: F32, Shape: []int{2, 2}, F32: []float32{1, 2, 3}}},
		{"bad dtype", Tensor{DType: "F16", Shape: []int{1}}},
		{"negative dim", Tensor{DType: F32, Shape: []int{-1}}},
	}
	for _, tc := range tests {
		f := NewFile()
		if err := f.Add("x", tc.t); err == nil {
			t.Errorf("%s: Add accepted %+v", tc.name, tc.t)
		}
	}
	f := NewFile()
	_ = f.Add("x", Tensor{DType: F32, Shape: []int{1}, F32: []float32{1}})
	if err := f.Add("x", Tensor{DType: F32, Shape: []int{1}, F32: []float32{1}}); err == nil {
		t.Error("Add accepted a duplicate name")
	}
}

// file builds raw bytes from a header string and n data bytes.
func file(header string, data int) []byte {
	b := make([]byte, 8, 8+len(header)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, data)...)
}

func TestDecodeRejectsMalformed(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"too short", []byte{1, 2, 3}},
		{"header past end", func() []byte { b := file(`{}`, 0); b[0] = 200; return b }()},
		{"not an object", file(`[1]`, 0)},
		{"trailing garbage", file(`{} x`, 0)},
		{"unknown dtype", file(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}`, 2)},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4)},
		{"gap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8)},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4)},
		{"past data", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4)},
		{"extra data", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8)},
		{"duplicate", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8)},
		{"missing shape", file(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, 4)},
		{"three offsets", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}`, 4)},
		{"huge shape", file(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}`, 4)},
		{"bad metadata", file(`{"__metadata__":{"a":1}}`, 0)},
	}
	for _, tc := range tests {
		_, err := Decode(tc.data)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", tc.name, err)
		}
	}
}

func TestCheckStrictListsEveryDifference(t *testing.T) {
	f, err := ReadFile(smallFixture)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Spec{
		"conv.weight":            {F32, []int{2, 1, 1, 2}},
		"bn.num_batches_tracked": {I64, []int{}},
		"bn.running_var":         {F32, []int{4}},
		"bn.running_mean":        {F32, []int{3}},
	}
	err = f.CheckStrict(want)
	var me *MismatchError
	if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) {
		t.Fatalf("err = %v, want *MismatchError", err)
	}
	if !reflect.DeepEqual(me.Missing, []string{"bn.running_mean"}) || len(me.Unexpected) != 0 ||
		len(me.Misshaped) != 1 || !strings.HasPrefix(me.Misshaped[0], "bn.running_var:") {
		t.Errorf("got %+v", me)
	}
	delete(want, "conv.weight")
	want["bn.running_var"] = Spec{F32, []int{3}}
	delete(want, "bn.running_mean")
	err = f.CheckStrict(want)
	if !errors.As(err, &me) || !reflect.DeepEqual(me.Unexpected, []string{"conv.weight"}) {
		t.Errorf("err = %v, want conv.weight unexpected", err)
	}
	want["conv.weight"] = Spec{F32, []int{2, 1, 1, 2}}
	if err := f.CheckStrict(want); err != nil {
		t.Errorf("exact match: %v", err)
	}
}

func TestNameMapBothWays(t *testing.T) {
	f, err := ReadFile(smallFixture)
	if err != nil {
		t.Fatal(err)
	}
	m := NameMap{Map: map[string]string{"conv.weight": "encoder.0.weight", "bn.running_var": "encoder.1.running_var",
		"bn.num_batches_tracked": "encoder.1.num_batches_tracked"}, Prefix: "student.backbone."}
	ref, dropped := m.ToReference(f)
	if len(dropped) != 0 || ref.Names[0] != "student.backbone.encoder.0.weight" {
		t.Fatalf("to reference: %v dropped %v", ref.Names, dropped)
	}
	// A DINO checkpoint also holds the head and the teacher: skipped, not errors.
	_ = ref.Add("student.head.mlp.0.weight", Tensor{DType: F32, Shape: []int{1}, F32: []float32{1}})
	_ = ref.Add("teacher.backbone.encoder.0.weight", Tensor{DType: F32, Shape: []int{1}, F32: []float32{1}})
	back, skipped, err := m.FromReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Names, f.Names) || !reflect.DeepEqual(back.Tensors, f.Tensors) {
		t.Errorf("round trip: %v", back.Names)
	}
	if len(skipped) != 2 {
		t.Errorf("skipped %v, want the head and the teacher", skipped)
	}
}

func TestLoadNameMapGolden(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "safetensors", "resnet18_reference_names.json")
	m, err := LoadNameMap(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"conv1.weight":                       "encoder.0.weight",
		"layer1.0.conv1.weight":              "encoder.4.0.conv1.weight",
		"layer4.1.bn2.running_var":           "encoder.7.1.bn2.running_var",
		"layer2.0.downsample.0.weight":       "encoder.5.0.downsample.0.weight",
		"layer3.0.downsample.1.bias":         "encoder.6.0.downsample.1.bias",
		"bn1.num_batches_tracked":            "encoder.1.num_batches_tracked",
		"layer4.0.downsample.1.running_mean": "encoder.7.0.downsample.1.running_mean",
	}
	for k, v := range tests {
		if m.Map[k] != v {
			t.Errorf("%s -> %q, want %q", k, m.Map[k], v)
		}
	}
	if _, ok := m.Map["fc.weight"]; ok {
		t.Error("the classifier has no reference counterpart")
	}
}
