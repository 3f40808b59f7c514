package nn

import (
	"runtime"
	"testing"
	"weak"

	"gorgonia.org/gorgonia"
)

// TestParamDoesNotPinGraphs checks that a parameter used in a graph does
// not keep the graph alive: a model outlives the graphs it runs in (one per
// batch size, rebuilt per feature-extraction part), and a graph owns every
// op's activation buffers.
func TestParamDoesNotPinGraphs(t *testing.T) {
	p := NewParam("w", 4, 4)
	var graphs []weak.Pointer[gorgonia.ExprGraph]
	for range 3 {
		g := gorgonia.NewGraph()
		n := p.Node(g)
		if again := p.Node(g); again != n {
			t.Fatal("Node returned a second node for the same graph")
		}
		if n.Value() != p.Value {
			t.Fatal("the node does not share the parameter's value")
		}
		graphs = append(graphs, weak.Make(g))
	}
	runtime.GC()
	runtime.GC()
	for i, w := range graphs {
		if w.Value() != nil {
			t.Errorf("graph %d is still alive after its last use: the parameter pins it", i)
		}
	}
	// A live graph keeps its node.
	g := gorgonia.NewGraph()
	n := p.Node(g)
	runtime.GC()
	if p.Node(g) != n {
		t.Error("a live graph's node was forgotten")
	}
	runtime.KeepAlive(g)
}
