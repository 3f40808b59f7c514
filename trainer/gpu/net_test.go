package gpu

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sslight-go/sslight/trainer/backbone"
)

// randn returns n draws of scale·N(0, 1).
func randn(rng *rand.Rand, n int, scale float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(scale * rng.NormFloat64())
	}
	return s
}

// TestPassMemory checks the pass's lifetimes on the allocator's counters:
// an inference pass holds nothing but its embedding, a backward frees the
// activations, Release frees the rest.
func TestPassMemory(t *testing.T) {
	be := NewCPU()
	b, _ := backbone.New("resnet18", backbone.Options{Seed: 1, Width: 0.25})
	net, err := NewNet(be, b)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	weights := be.Allocator().Stats().InUse
	x, _ := be.NewTensor(2, 3, 32, 32)
	be.Upload(x, randn(rand.New(rand.NewPCG(1, 1)), 2*3*32*32, 1))
	base := weights + int64(SizeClass(x.Bytes()))

	p, err := net.Forward(x, Mode{})
	if err != nil {
		t.Fatal(err)
	}
	embBytes := int64(SizeClass(p.Embedding().Bytes()))
	if got := be.Allocator().Stats().InUse; got != base+embBytes {
		t.Fatalf("inference pass holds %d bytes beyond the weights and input, want only the embedding's %d", got-base, embBytes)
	}
	if err := p.Backward(p.Embedding()); err == nil {
		t.Fatal("Backward of a pass without gradients accepted")
	}
	p.Release()
	if got := be.Allocator().Stats().InUse; got != base {
		t.Fatalf("after Release %d bytes beyond the weights and input", got-base)
	}

	p, err = net.Forward(x, Mode{Train: true, Grad: true})
	if err != nil {
		t.Fatal(err)
	}
	held := be.Allocator().Stats().InUse - base
	dEmb, _ := be.NewTensor(p.Embedding().Shape...)
	be.Upload(dEmb, randn(rand.New(rand.NewPCG(2, 2)), dEmb.Len(), 1))
	if err := p.Backward(dEmb); err != nil {
		t.Fatal(err)
	}
	grads := int64(0)
	for _, prm := range net.Params() {
		grads += int64(SizeClass(prm.Grad.Bytes()))
	}
	after := be.Allocator().Stats().InUse - base - grads - int64(SizeClass(dEmb.Bytes()))
	if want := embBytes + int64(SizeClass(x.Bytes())); after != want {
		t.Fatalf("after Backward the pass holds %d bytes (activations held before: %d), want the embedding and the input gradient, %d", after, held, want)
	}
	if err := p.Backward(dEmb); err == nil {
		t.Fatal("a second Backward was accepted")
	}
	p.Release()
	be.Release(dEmb)
	be.Release(x)
	if got := be.Allocator().Stats().InUse; got != weights+grads {
		t.Fatalf("after Release: %d bytes in use, want the weights and gradients' %d", got, weights+grads)
	}
	if _, err := net.Forward(&Tensor{Shape: []int{2, 1, 32, 32}}, Mode{}); err == nil {
		t.Fatal("a one-channel input was accepted")
	}
}

// TestNetStateDictRoundTrip loads a state dict strictly and gives it back.
func TestNetStateDictRoundTrip(t *testing.T) {
	be := NewCPU()
	a, _ := backbone.New("vit_tiny", backbone.Options{Seed: 1})
	b, _ := backbone.New("vit_tiny", backbone.Options{Seed: 2})
	net, err := NewNet(be, b)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	want := backbone.StateDict(a)
	if err := net.LoadStateDict(want); err != nil {
		t.Fatal(err)
	}
	clear(b.Params()[0].Data()) // the device copy must be what StateDict returns
	got, err := net.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want.Names {
		if !slices.Equal(got.Tensors[name].F32, want.Tensors[name].F32) {
			t.Fatalf("%s differs after the round trip", name)
		}
	}
	r18, _ := backbone.New("resnet18", backbone.Options{})
	if err := net.LoadStateDict(backbone.StateDict(r18)); err == nil {
		t.Fatal("a resnet18 state dict loaded into a ViT")
	}
}

// TestProgramsEvicted runs a ViT on more input shapes than a Net keeps
// programs for (each with its own interpolation matrix): the cache stays
// bounded, a program a pass still holds is kept, and Close frees it all.
func TestProgramsEvicted(t *testing.T) {
	be := NewCPU()
	b, _ := backbone.New("vit_tiny", backbone.Options{Seed: 1})
	net, err := NewNet(be, b)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var held *Pass
	for k := 1; k <= maxPrograms+3; k++ {
		x, _ := be.NewTensor(1, 3, 16, 16*k)
		be.Upload(x, randn(rng, x.Len(), 1))
		p, err := net.Forward(x, Mode{})
		if err != nil {
			t.Fatal(err)
		}
		if k == 1 {
			held = p // keeps the first program alive through the evictions
		} else {
			p.Release()
		}
		be.Release(x)
		if len(net.progs) > maxPrograms {
			t.Fatalf("%d programs cached, at most %d", len(net.progs), maxPrograms)
		}
	}
	if _, ok := net.progs[progKey{1, 16, 16, false}]; !ok {
		t.Fatal("the program of a live pass was evicted")
	}
	held.Release()
	net.Close()
	if st := be.Allocator().Stats(); st.InUse != 0 {
		t.Fatalf("%d bytes in use after Close", st.InUse)
	}
}
