package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"

	"google.golang.org/protobuf/proto"
)

// IRVersion is the IR version of the onnx.proto this package was generated
// from (ONNX 1.12), written into every model.
const IRVersion = int64(Version_IR_VERSION)

// Dim is one dimension of a value's shape: a fixed size, or a symbolic one
// (ONNX's dim_param, e.g. a dynamic batch "N") when Param is set.
type Dim struct {
	Value int64
	Param string
}

// Fixed is a dimension of size n.
func Fixed(n int) Dim { return Dim{Value: int64(n)} }

// Symbolic is a dimension known only at run time, named name.
func Symbolic(name string) Dim { return Dim{Param: name} }

// String prints the size or the name.
func (d Dim) String() string {
	if d.Param != "" {
		return d.Param
	}
	return strconv.FormatInt(d.Value, 10)
}

// Graph assembles a GraphProto. Values are named by strings; the builders
// return the name of what they add, made unique within the graph, so
// callers can pass readable names ("layer1.0.conv1") without tracking
// collisions. Nodes are kept in the order added, which must be a
// topological order (ONNX requires it; each builder consumes values that
// exist already).
type Graph struct {
	name    string
	nodes   []*NodeProto
	inits   []*TensorProto
	inputs  []*ValueInfoProto
	outputs []*ValueInfoProto
	used    map[string]bool
	// produced maps a value to the node that produces it (nil for inputs
	// and initializers), for Rename.
	produced map[string]*NodeProto
}

// NewGraph starts an empty graph.
func NewGraph(name string) *Graph {
	return &Graph{name: name, used: map[string]bool{}, produced: map[string]*NodeProto{}}
}

// unique returns name, or name_2, name_3, … if taken, and reserves it.
func (g *Graph) unique(name string) string {
	if name == "" {
		name = "value"
	}
	n := name
	for i := 2; g.used[n]; i++ {
		n = name + "_" + strconv.Itoa(i)
	}
	g.used[n] = true
	return n
}

// Has reports whether a value of that name exists.
func (g *Graph) Has(name string) bool { return g.used[name] }

// Input declares a float32 graph input of the given shape and returns its
// name, which must be free (inputs are part of the model's interface, so
// they are never renamed).
func (g *Graph) Input(name string, dims ...Dim) (string, error) {
	if g.used[name] {
		return "", fmt.Errorf("onnx: input %q: the name is taken", name)
	}
	g.used[name] = true
	g.produced[name] = nil
	g.inputs = append(g.inputs, ValueInfo(name, TensorProto_FLOAT, dims...))
	return name, nil
}

// Output declares an existing value as a graph output of the given shape.
// The shape is required: OpenCV's importer refuses outputs without one.
func (g *Graph) Output(name string, dims ...Dim) error {
	if !g.used[name] {
		return fmt.Errorf("onnx: output %q: no such value", name)
	}
	g.outputs = append(g.outputs, ValueInfo(name, TensorProto_FLOAT, dims...))
	return nil
}

// Rename gives the value from another name (for instance an output's
// public name), in the node that produces it and in every node that
// consumes it, so that no Identity node is needed. to must be free.
func (g *Graph) Rename(from, to string) error {
	if !g.used[from] {
		return fmt.Errorf("onnx: rename %q: no such value", from)
	}
	if g.used[to] {
		return fmt.Errorf("onnx: rename %q to %q: the name is taken", from, to)
	}
	n, ok := g.produced[from]
	if !ok || n == nil {
		return fmt.Errorf("onnx: rename %q: only node outputs can be renamed", from)
	}
	for i, o := range n.Output {
		if o == from {
			n.Output[i] = to
		}
	}
	if n.GetName() == from {
		n.Name = proto.String(to)
	}
	for _, m := range g.nodes {
		for i, in := range m.Input {
			if in == from {
				m.Input[i] = to
			}
		}
	}
	for _, o := range g.outputs {
		if o.GetName() == from {
			o.Name = proto.String(to)
		}
	}
	delete(g.produced, from)
	delete(g.used, from)
	g.produced[to] = n
	g.used[to] = true
	return nil
}

// Float adds a float32 initializer (a constant: weights, biases, shapes of
// other constants) of the given dims and returns its name. len(data) must
// be the product of dims; no dims make a scalar.
func (g *Graph) Float(name string, data []float32, dims ...int) string {
	checkLen(name, len(data), dims)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return g.initializer(name, TensorProto_FLOAT, raw, dims)
}

// Int64 adds an int64 initializer (shapes, pads, axes) and returns its name.
func (g *Graph) Int64(name string, data []int64, dims ...int) string {
	checkLen(name, len(data), dims)
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return g.initializer(name, TensorProto_INT64, raw, dims)
}

// Scalar adds a float32 constant of shape [1] (broadcast against anything)
// and returns its name.
func (g *Graph) Scalar(name string, v float32) string { return g.Float(name, []float32{v}, 1) }

func checkLen(name string, n int, dims []int) {
	want := 1
	for _, d := range dims {
		want *= d
	}
	if n != want {
		// The caller computed both from one shape: a mismatch is a bug.
		panic(fmt.Sprintf("onnx: initializer %s: %d values for dims %v", name, n, dims))
	}
}

func (g *Graph) initializer(name string, t TensorProto_DataType, raw []byte, dims []int) string {
	name = g.unique(name)
	g.produced[name] = nil
	d := make([]int64, len(dims))
	for i, v := range dims {
		d[i] = int64(v)
	}
	g.inits = append(g.inits, &TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(t)), Dims: d, RawData: raw})
	return name
}

// Node adds a node with one output, named after name (made unique), and
// returns the output's name. The node itself carries the same name.
func (g *Graph) Node(op, name string, inputs []string, attrs ...*AttributeProto) string {
	return g.NodeOutputs(op, name, inputs, 1, attrs...)[0]
}

// NodeOutputs adds a node with n outputs (name, name_2, … made unique) and
// returns their names. Every input must exist already.
func (g *Graph) NodeOutputs(op, name string, inputs []string, n int, attrs ...*AttributeProto) []string {
	for _, in := range inputs {
		if in != "" && !g.used[in] {
			// Builders consume what they were given: an unknown value is a bug.
			panic(fmt.Sprintf("onnx: %s node %s: input %q does not exist", op, name, in))
		}
	}
	outs := make([]string, n)
	for i := range outs {
		outs[i] = g.unique(name)
	}
	node := &NodeProto{Name: proto.String(outs[0]), OpType: proto.String(op), Input: append([]string(nil), inputs...),
		Output: outs, Attribute: attrs}
	for _, o := range outs {
		g.produced[o] = node
	}
	g.nodes = append(g.nodes, node)
	return append([]string(nil), outs...)
}

// Nodes returns how many nodes the graph has.
func (g *Graph) Nodes() int { return len(g.nodes) }

// OpCounts counts the nodes by op type.
func (g *Graph) OpCounts() map[string]int {
	m := map[string]int{}
	for _, n := range g.nodes {
		m[n.GetOpType()]++
	}
	return m
}

// Proto returns the graph message. The Graph must not be changed after.
func (g *Graph) Proto() *GraphProto {
	return &GraphProto{Name: proto.String(g.name), Node: g.nodes, Initializer: g.inits, Input: g.inputs, Output: g.outputs}
}

// ValueInfo describes a tensor value of element type t and the given shape.
func ValueInfo(name string, t TensorProto_DataType, dims ...Dim) *ValueInfoProto {
	shape := &TensorShapeProto{}
	for _, d := range dims {
		dim := &TensorShapeProto_Dimension{}
		if d.Param != "" {
			dim.Value = &TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
		} else {
			dim.Value = &TensorShapeProto_Dimension_DimValue{DimValue: d.Value}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &ValueInfoProto{Name: proto.String(name), Type: &TypeProto{Value: &TypeProto_TensorType{
		TensorType: &TypeProto_Tensor{ElemType: proto.Int32(int32(t)), Shape: shape}}}}
}

// AttrInt is an integer attribute.
func AttrInt(name string, v int64) *AttributeProto {
	return &AttributeProto{Name: proto.String(name), Type: AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrInts is an attribute holding a list of integers.
func AttrInts(name string, v ...int64) *AttributeProto {
	return &AttributeProto{Name: proto.String(name), Type: AttributeProto_INTS.Enum(), Ints: append([]int64{}, v...)}
}

// AttrFloat is a float attribute.
func AttrFloat(name string, v float32) *AttributeProto {
	return &AttributeProto{Name: proto.String(name), Type: AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrString is a string attribute.
func AttrString(name, v string) *AttributeProto {
	return &AttributeProto{Name: proto.String(name), Type: AttributeProto_STRING.Enum(), S: []byte(v)}
}

// ModelOptions are what a model carries besides its graph.
type ModelOptions struct {
	// Opset is the version of the default ("ai.onnx") operator set.
	Opset int64
	// ProducerName and ProducerVersion name the program that wrote it.
	ProducerName, ProducerVersion string
	// DocString describes the model.
	DocString string
	// Metadata becomes metadata_props, sorted by key.
	Metadata map[string]string
}

// NewModel wraps a graph into a model of IR version IRVersion.
func NewModel(g *GraphProto, o ModelOptions) *ModelProto {
	m := &ModelProto{
		IrVersion:       proto.Int64(IRVersion),
		OpsetImport:     []*OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(o.Opset)}},
		ProducerName:    proto.String(o.ProducerName),
		ProducerVersion: proto.String(o.ProducerVersion),
		Graph:           g,
	}
	if o.DocString != "" {
		m.DocString = proto.String(o.DocString)
	}
	keys := make([]string, 0, len(o.Metadata))
	for k := range o.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.MetadataProps = append(m.MetadataProps, &StringStringEntryProto{Key: proto.String(k), Value: proto.String(o.Metadata[k])})
	}
	return m
}

// Marshal encodes a model deterministically: the same model gives the same
// bytes.
func Marshal(m *ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnx: encode model: %w", err)
	}
	return b, nil
}

// Unmarshal decodes a model.
func Unmarshal(b []byte) (*ModelProto, error) {
	m := &ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("onnx: decode model: %w", err)
	}
	return m, nil
}

// Metadata returns a model's metadata_props as a map.
func Metadata(m *ModelProto) map[string]string {
	out := map[string]string{}
	for _, p := range m.GetMetadataProps() {
		out[p.GetKey()] = p.GetValue()
	}
	return out
}

// FloatData decodes a float32 initializer's values (raw_data or
// float_data).
func FloatData(t *TensorProto) ([]float32, error) {
	if TensorProto_DataType(t.GetDataType()) != TensorProto_FLOAT {
		return nil, fmt.Errorf("onnx: tensor %s is %v, not FLOAT", t.GetName(), TensorProto_DataType(t.GetDataType()))
	}
	if raw := t.GetRawData(); raw != nil {
		if len(raw)%4 != 0 {
			return nil, fmt.Errorf("onnx: tensor %s: %d raw bytes", t.GetName(), len(raw))
		}
		out := make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out, nil
	}
	return append([]float32(nil), t.GetFloatData()...), nil
}
