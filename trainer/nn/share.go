package nn

import (
	"errors"
	"fmt"
	"slices"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BufferPlan says what ShareBuffers did to a graph.
type BufferPlan struct {
	Ops     int   // coarse ops whose outputs were planned
	Buffers int   // distinct buffers they share
	Bytes   int64 // bytes of those buffers
	Unplan  int64 // bytes the outputs take without sharing
}

// ErrNotInference is returned by ShareBuffers for a graph with gradient
// nodes: a training graph keeps its activations for the backward pass.
var ErrNotInference = errors.New("graph has gradient nodes")

// ShareBuffers lets the coarse ops of an inference graph share output
// buffers, as PyTorch frees an activation when its last consumer has run:
// an op's output is written into a buffer whose previous owner's last
// reader has already run, in the order gorgonia's tape machine executes the
// graph. Every op keeps its own output buffer otherwise, so an eval-mode
// resnet18 on 32 images of 224 px held every activation at once (~850 MB);
// shared, the largest two or three (~210 MB) are resident.
//
// keep lists the nodes read after a run (the embedding, a feature map):
// their buffers are never reused. Call it once, before the first run of
// the graph's tape machine, on a graph no other machine runs.
//
// gorgonia's own ops may return views of their inputs or (run "unsafe") write
// into them, so a stock op's output counts as possibly aliasing all of its
// inputs: an input's buffer then lives until the stock op's output is dead.
func ShareBuffers(g *gorgonia.ExprGraph, keep ...*gorgonia.Node) (BufferPlan, error) {
	sorted, err := gorgonia.Sort(g)
	if err != nil {
		return BufferPlan{}, fmt.Errorf("share buffers: %w", err)
	}
	slices.Reverse(sorted) // the tape machine's execution order
	pos := make(map[*gorgonia.Node]int, len(sorted))
	for i, n := range sorted {
		pos[n] = i
		if _, ok := n.Op().(*gradOp); ok {
			return BufferPlan{}, fmt.Errorf("share buffers: %s: %w", n.Name(), ErrNotInference)
		}
	}

	// Union-find over nodes that may share memory: a stock op with its
	// inputs. A class lives until its last member's last reader.
	parent := make([]int, len(sorted))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	children := func(n *gorgonia.Node) []*gorgonia.Node {
		var cs []*gorgonia.Node
		it := g.From(n.ID())
		for it.Next() {
			cs = append(cs, it.Node().(*gorgonia.Node))
		}
		return cs
	}
	for i, n := range sorted {
		if _, ours := n.Op().(*fwdOp); ours || n.Op() == nil {
			continue
		}
		for _, c := range children(n) {
			parent[find(pos[c])] = find(i)
		}
	}
	end := len(sorted) // "read after the run"
	lastUse := make([]int, len(sorted))
	for i := range lastUse {
		lastUse[i] = i // a value nobody reads dies where it is made
	}
	for i, n := range sorted {
		for _, c := range children(n) {
			r := find(pos[c])
			lastUse[r] = max(lastUse[r], i)
		}
	}
	for _, n := range keep {
		p, ok := pos[n]
		if !ok {
			return BufferPlan{}, fmt.Errorf("share buffers: kept node %s is not in the graph", n.Name())
		}
		lastUse[find(p)] = end
	}

	// Hand out buffers in execution order: an op takes the smallest free
	// buffer that fits, once its previous owner's class is dead.
	type buffer struct {
		data []float32
		busy int // last use of its current owner's class
	}
	var bufs []*buffer
	var plan BufferPlan
	for i, n := range sorted {
		op, ok := n.Op().(*fwdOp)
		if !ok {
			continue
		}
		size := shapeProduct(op.outShape)
		var best *buffer
		for _, b := range bufs {
			if b.busy < i && cap(b.data) >= size && (best == nil || cap(b.data) < cap(best.data)) {
				best = b
			}
		}
		if best == nil {
			best = &buffer{data: make([]float32, size)}
			bufs = append(bufs, best)
			plan.Bytes += int64(size) * 4
		}
		best.busy = lastUse[find(i)]
		op.mu.Lock()
		op.out = tensor.New(tensor.WithShape(op.outShape.Clone()...), tensor.WithBacking(best.data[:size]))
		op.mu.Unlock()
		plan.Ops++
		plan.Unplan += int64(size) * 4
	}
	plan.Buffers = len(bufs)
	return plan, nil
}
