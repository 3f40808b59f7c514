package detect

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// reference is testdata/centernet.json, written by gen_centernet.py from
// CenterNet's formulas in torch 1.13 (gradients by autograd).
type reference struct {
	Shape   [4]int `json:"shape"`
	Objects []struct {
		Image, Class int
		Box          [4]float64
	} `json:"objects"`
	Centres []struct {
		Image, Class, X, Y, Radius int
		Size, Offset               [2]float64
	} `json:"centres"`
	Heat      []float32    `json:"heat"`
	Radii     [][3]float64 `json:"radii"`
	Logits    []float32    `json:"logits"`
	Focal     float64      `json:"focal_loss"`
	FocalGrad []float64    `json:"focal_grad"`
	Reg       []float32    `json:"reg"`
	L1        map[string]struct {
		Loss float64
		Grad []float64
	} `json:"l1"`
}

func loadReference(t *testing.T) *reference {
	t.Helper()
	b, err := os.ReadFile("testdata/centernet.json")
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func (r *reference) targets() *Targets {
	t := &Targets{}
	t.Reset(r.Shape[0], r.Shape[1], r.Shape[2], r.Shape[3])
	for _, o := range r.Objects {
		t.Add(o.Image, o.Class, o.Box)
	}
	return t
}

func TestGaussianRadiusMatchesCenterNet(t *testing.T) {
	for _, c := range loadReference(t).Radii {
		if got := GaussianRadius(c[0], c[1], MinOverlap); math.Abs(got-c[2]) > 1e-12 {
			t.Errorf("GaussianRadius(h=%g, w=%g) = %.15g, want %.15g", c[0], c[1], got, c[2])
		}
	}
}

func TestTargetsMatchCenterNet(t *testing.T) {
	ref := loadReference(t)
	tg := ref.targets()
	for i, want := range ref.Heat {
		if math.Abs(float64(tg.Heat[i]-want)) > 1e-7 {
			t.Fatalf("heat[%d] = %g, want %g", i, tg.Heat[i], want)
		}
	}
	if len(tg.Objects) != len(ref.Centres) {
		t.Fatalf("%d objects, want %d", len(tg.Objects), len(ref.Centres))
	}
	for i, c := range ref.Centres {
		o := tg.Objects[i]
		if o.Image != c.Image || o.Class != c.Class || o.X != c.X || o.Y != c.Y {
			t.Errorf("object %d: %+v, want %+v", i, o, c)
		}
		for j := 0; j < 2; j++ {
			if math.Abs(float64(o.Size[j])-c.Size[j]) > 1e-6 || math.Abs(float64(o.Offset[j])-c.Offset[j]) > 1e-6 {
				t.Errorf("object %d: size %v offset %v, want %v %v", i, o.Size, o.Offset, c.Size, c.Offset)
			}
		}
	}
	// A box whose centre falls outside the grid is skipped.
	if tg.Add(0, 0, [4]float64{11, 9, 4, 4}) || tg.Add(0, 0, [4]float64{1, 1, 0, 3}) {
		t.Error("Add accepted a centre outside the grid or an empty box")
	}
}

// run builds a graph of loss(x) for one input value, runs it with the
// gradient and returns loss and d loss / d x.
func run(t *testing.T, x *tensor.Dense, build func(*gorgonia.Node) (*gorgonia.Node, error)) (float64, []float32) {
	t.Helper()
	g := gorgonia.NewGraph()
	xn := gorgonia.NewTensor(g, tensor.Float32, x.Dims(), gorgonia.WithShape(x.Shape()...), gorgonia.WithName("x"), gorgonia.WithValue(x))
	loss, err := build(xn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gorgonia.Grad(loss, xn); err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	gv, err := xn.Grad()
	if err != nil {
		t.Fatal(err)
	}
	return float64(loss.Value().Data().(float32)), append([]float32(nil), gv.Data().([]float32)...)
}

func dense(v []float32, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), v...)))
}

func TestLossesMatchTorch(t *testing.T) {
	ref := loadReference(t)
	s := ref.Shape
	tg := ref.targets()
	close := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6+1e-5*math.Abs(want) {
			t.Errorf("%s = %.8g, want %.8g (torch)", what, got, want)
		}
	}
	loss, grad := run(t, dense(ref.Logits, s[:]...), func(x *gorgonia.Node) (*gorgonia.Node, error) { return FocalLossOp(x, tg) })
	close("focal loss", loss, ref.Focal)
	for i, g := range grad {
		close(fmt.Sprintf("d focal / d x[%d]", i), float64(g), ref.FocalGrad[i])
	}
	for name, field := range map[string]int{"size": FieldSize, "offset": FieldOffset} {
		loss, grad := run(t, dense(ref.Reg, s[0], 4, s[2], s[3]), func(x *gorgonia.Node) (*gorgonia.Node, error) { return RegL1LossOp(x, tg, field) })
		close(name+" L1 loss", loss, ref.L1[name].Loss)
		for i, g := range grad {
			close(fmt.Sprintf("d %s L1 / d r[%d]", name, i), float64(g), ref.L1[name].Grad[i])
		}
	}
}

// TestLossesWithoutObjects: with no positives the focal loss is the
// negatives' sum alone and the regressions contribute nothing.
func TestLossesWithoutObjects(t *testing.T) {
	tg := &Targets{}
	tg.Reset(1, 1, 1, 2)
	// Logits 0 and ln 3: p = 1/2 and 3/4, target 0 (weight 1).
	want := -(0.25*math.Log(0.5) + 0.5625*math.Log(0.25))
	loss, _ := run(t, dense([]float32{0, float32(math.Log(3))}, 1, 1, 1, 2), func(x *gorgonia.Node) (*gorgonia.Node, error) { return FocalLossOp(x, tg) })
	if math.Abs(loss-want) > 1e-6 {
		t.Errorf("focal loss without objects = %g, want %g", loss, want)
	}
	loss, grad := run(t, dense(make([]float32, 8), 1, 4, 1, 2), func(x *gorgonia.Node) (*gorgonia.Node, error) { return RegL1LossOp(x, tg, FieldSize) })
	for _, g := range grad {
		if g != 0 || loss != 0 {
			t.Fatalf("L1 without objects: loss %g grad %v, want 0", loss, grad)
		}
	}
}

// gradCheck compares the op's analytic gradient (Grad + TapeMachine) with
// central finite differences of the scalar the build returns.
func gradCheck(t *testing.T, name string, x *tensor.Dense, build func(*gorgonia.Node) (*gorgonia.Node, error)) {
	t.Helper()
	g := gorgonia.NewGraph()
	xn := gorgonia.NewTensor(g, tensor.Float32, x.Dims(), gorgonia.WithShape(x.Shape()...), gorgonia.WithName("x"), gorgonia.WithValue(x))
	loss, err := build(xn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gorgonia.Grad(loss, xn); err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	eval := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		return float64(loss.Value().Data().(float32))
	}
	eval()
	gv, _ := xn.Grad()
	ana := append([]float32(nil), gv.Data().([]float32)...)
	const eps = 1e-2
	data := x.Float32s()
	bad := 0
	for j := range data {
		orig := data[j]
		data[j] = orig + eps
		up := eval()
		data[j] = orig - eps
		down := eval()
		data[j] = orig
		num := (up - down) / (2 * eps)
		if math.Abs(num-float64(ana[j])) > 2e-3+1e-2*math.Abs(num) {
			if bad < 5 {
				t.Errorf("%s: d/dx[%d]: analytic %.6g, finite difference %.6g", name, j, ana[j], num)
			}
			bad++
		}
	}
}

func TestGradientsFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	randT := func(lo, hi float32, shape ...int) *tensor.Dense {
		d := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
		for i, v := 0, d.Float32s(); i < len(v); i++ {
			v[i] = lo + (hi-lo)*rng.Float32()
		}
		return d
	}
	tg := &Targets{}
	tg.Reset(2, 2, 4, 5)
	tg.Add(0, 1, [4]float64{0.5, 0.5, 2, 2.4})
	tg.Add(1, 0, [4]float64{1.2, 0.3, 3.5, 3.1})
	tg.Add(1, 1, [4]float64{2, 1, 1, 1})
	// Logits in [−3, 1.5]: the sigmoid stays inside its clamp.
	gradCheck(t, "focal", randT(-3, 1.5, 2, 2, 4, 5), func(x *gorgonia.Node) (*gorgonia.Node, error) { return FocalLossOp(x, tg) })
	// Regressions well away from the targets (the L1 kink).
	reg := randT(5, 8, 2, 4, 4, 5)
	gradCheck(t, "size L1", reg, func(x *gorgonia.Node) (*gorgonia.Node, error) { return RegL1LossOp(x, tg, FieldSize) })
	gradCheck(t, "offset L1", reg, func(x *gorgonia.Node) (*gorgonia.Node, error) { return RegL1LossOp(x, tg, FieldOffset) })
	// Upsampling, through a weighted sum so every output element counts.
	w := randT(-1, 1, 2, 3, 4, 6)
	gradCheck(t, "upsample", randT(-1, 1, 2, 3, 2, 3), func(x *gorgonia.Node) (*gorgonia.Node, error) {
		u, err := UpsampleOp(x)
		if err != nil {
			return nil, err
		}
		wn := gorgonia.NewTensor(x.Graph(), tensor.Float32, 4, gorgonia.WithShape(2, 3, 4, 6), gorgonia.WithName("w"), gorgonia.WithValue(w))
		p, err := gorgonia.HadamardProd(u, wn)
		if err != nil {
			return nil, err
		}
		return gorgonia.Sum(p)
	})
}

func TestUpsampleValues(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 1, 2, 2), gorgonia.WithName("x"), gorgonia.WithValue(dense([]float32{1, 2, 3, 4}, 1, 1, 2, 2)))
	u, err := UpsampleOp(x)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}
	got := u.Value().Data().([]float32)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("upsample = %v, want %v", got, want)
		}
	}
}
