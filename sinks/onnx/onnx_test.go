package onnx

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent runs the go:generate line of gen.go into a
// temporary folder and expects onnx.pb.go byte for byte. It needs the
// protoc and protoc-gen-go versions the committed file names in its
// header, and skips, saying which, otherwise.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	committed, err := os.ReadFile("onnx.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	var wantGen, wantProtoc string
	for _, l := range strings.Split(string(committed), "\n")[:20] {
		if v, ok := strings.CutPrefix(l, "// \tprotoc-gen-go "); ok {
			wantGen = v
		}
		if v, ok := strings.CutPrefix(l, "// \tprotoc        "); ok {
			wantProtoc = v
		}
	}
	if wantGen == "" || wantProtoc == "" {
		t.Fatalf("onnx.pb.go's header names no protoc/protoc-gen-go versions")
	}
	gen, err := exec.LookPath("protoc-gen-go")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		gen = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "protoc-gen-go")
	}
	genVersion, err := exec.Command(gen, "--version").Output()
	if err != nil {
		t.Skipf("no protoc-gen-go (%v): go install google.golang.org/protobuf/cmd/protoc-gen-go@%s", err, wantGen)
	}
	protocVersion, err := exec.Command("protoc", "--version").Output()
	if err != nil {
		t.Skipf("no protoc (%v): Debian's protobuf-compiler has it", err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(genVersion)), wantGen) ||
		strings.TrimPrefix(strings.TrimSpace(string(protocVersion)), "libprotoc ") != strings.TrimPrefix(wantProtoc, "v") {
		t.Skipf("installed %s / %s; onnx.pb.go was made with protoc-gen-go %s and protoc %s",
			bytes.TrimSpace(genVersion), bytes.TrimSpace(protocVersion), wantGen, wantProtoc)
	}
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, l := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(l, "//go:generate protoc "); ok {
			args = strings.Fields(rest)
		}
	}
	if args == nil {
		t.Fatal("gen.go has no //go:generate protoc line")
	}
	tmp := t.TempDir()
	for i, a := range args {
		if a == "--go_out=." {
			args[i] = "--go_out=" + tmp
		}
	}
	cmd := exec.Command("protoc", append(args, "--plugin=protoc-gen-go="+gen)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc %v: %v\n%s", args, err, out)
	}
	fresh, err := os.ReadFile(filepath.Join(tmp, "onnx.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Error("onnx.pb.go is not what gen.go's go:generate line makes from onnx.proto: run go generate ./sinks/onnx")
	}
}

func TestGraphNamesAndRename(t *testing.T) {
	g := NewGraph("g")
	x, err := g.Input("x", Symbolic("N"), Fixed(4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Input("x", Fixed(1)); err == nil {
		t.Error("a second input x was accepted")
	}
	w := g.Float("w", []float32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 4)
	w2 := g.Float("w", []float32{1, 2}, 2)
	if w != "w" || w2 != "w_2" {
		t.Errorf("initializer names %q %q, want w and w_2", w, w2)
	}
	y := g.Node("Gemm", "fc", []string{x, w}, AttrInt("transB", 1))
	z := g.Node("Relu", "fc", []string{y})
	if y != "fc" || z != "fc_2" {
		t.Errorf("node outputs %q %q, want fc and fc_2", y, z)
	}
	if err := g.Rename(y, "z"); err != nil {
		t.Fatal(err)
	}
	if err := g.Rename("z", "w"); err == nil {
		t.Error("renamed onto an initializer's name")
	}
	if err := g.Rename(x, "input"); err == nil {
		t.Error("renamed a graph input")
	}
	if err := g.Output("z", Symbolic("N"), Fixed(2)); err != nil {
		t.Fatal(err)
	}
	if err := g.Output("nothing"); err == nil {
		t.Error("declared an output that no node makes")
	}
	p := g.Proto()
	if got := p.GetNode()[1].GetInput(); !reflect.DeepEqual(got, []string{"z"}) {
		t.Errorf("the consumer of the renamed value reads %v", got)
	}
	if n := p.GetNode()[0]; n.GetName() != "z" || n.GetOutput()[0] != "z" {
		t.Errorf("renamed node: name %q outputs %v", n.GetName(), n.GetOutput())
	}
	d := p.GetOutput()[0].GetType().GetTensorType().GetShape().GetDim()
	if d[0].GetDimParam() != "N" || d[1].GetDimValue() != 2 {
		t.Errorf("output dims %v", d)
	}
	v, err := FloatData(p.GetInitializer()[0])
	if err != nil || !reflect.DeepEqual(v, []float32{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("initializer w reads back %v (%v)", v, err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a node reading an unknown value did not panic")
		}
	}()
	g.Node("Relu", "r", []string{"unknown"})
}

// TestModelReadByONNX builds a small model and has Debian's python3-onnx
// (an independent protobuf decoder and the ONNX checker) read it back.
func TestModelReadByONNX(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import onnx").Run(); err != nil {
		t.Skipf("no %s with onnx (%v): Debian's python3-onnx", py, err)
	}
	g := NewGraph("tiny")
	x, _ := g.Input("x", Symbolic("N"), Fixed(3))
	y := g.Node("Gemm", "fc", []string{x, g.Float("fc.weight", []float32{1, 0, -1, 0.5, 2, 0}, 2, 3), g.Float("fc.bias", []float32{0.25, -4}, 2)},
		AttrInt("transB", 1))
	y = g.Node("Reshape", "r", []string{y, g.Int64("r.shape", []int64{0, -1}, 2)})
	if err := g.Output(y, Symbolic("N"), Fixed(2)); err != nil {
		t.Fatal(err)
	}
	m := NewModel(g.Proto(), ModelOptions{Opset: 13, ProducerName: "test", ProducerVersion: "1",
		Metadata: map[string]string{"b": "2", "a": "1"}})
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Marshal(m)
	if !bytes.Equal(b, again) {
		t.Error("Marshal is not deterministic")
	}
	back, err := Unmarshal(b)
	if err != nil || !reflect.DeepEqual(Metadata(back), map[string]string{"a": "1", "b": "2"}) {
		t.Errorf("metadata after a round trip: %v (%v)", Metadata(back), err)
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `import json, sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print(json.dumps({"ir": m.ir_version, "opset": m.opset_import[0].version,
  "meta": [[p.key, p.value] for p in m.metadata_props], "nodes": [n.op_type for n in m.graph.node],
  "inits": {i.name: numpy_helper.to_array(i).ravel().tolist() for i in m.graph.initializer},
  "out": [d.dim_param or d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim]}))`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx: %v\n%s", err, out)
	}
	var got struct {
		IR    int64                `json:"ir"`
		Opset int64                `json:"opset"`
		Meta  [][2]string          `json:"meta"`
		Nodes []string             `json:"nodes"`
		Inits map[string][]float64 `json:"inits"`
		Out   []any                `json:"out"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string][]float64{"fc.weight": {1, 0, -1, 0.5, 2, 0}, "fc.bias": {0.25, -4}, "r.shape": {0, -1}}
	if got.IR != 8 || got.Opset != 13 || !reflect.DeepEqual(got.Meta, [][2]string{{"a", "1"}, {"b", "2"}}) ||
		!reflect.DeepEqual(got.Nodes, []string{"Gemm", "Reshape"}) || !reflect.DeepEqual(got.Inits, want) ||
		!reflect.DeepEqual(got.Out, []any{"N", 2.0}) {
		t.Errorf("python's onnx reads %+v", got)
	}
}
