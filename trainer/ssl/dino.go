package ssl

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DINOConfig holds the settings of the DINO loss under the reference's
// meaning (cfg.MULTI_VIEWS_TRANSFORMS and cfg.DINO).
type DINOConfig struct {
	// GlobalCrops and LocalCrops are NMB_CROPS: the student sees
	// GlobalCrops+LocalCrops views, the teacher the GlobalCrops first ones.
	GlobalCrops, LocalCrops int
	// Lambdas weight the global-global and the global-local mean terms.
	Lambdas [2]float64
	// GlobalOnly makes the loss the global-global mean alone.
	GlobalOnly bool
	// StudentTemp divides the student output (0.1).
	StudentTemp float64
	// TeacherTemps is the teacher temperature per epoch
	// (optim.TeacherTempSchedule), or per iteration
	// (optim.TeacherTempScheduleIters) when SetEpoch is given the global
	// step instead.
	TeacherTemps []float64
	// CenterMomentum is the EMA momentum of the center (0.9).
	CenterMomentum float64
	// OutDim is the head's output width D.
	OutDim int
}

// DINOTerms are the values of the last forward, for logging.
type DINOTerms struct {
	Loss float32
	// Global and Local are the unweighted means g/n_g and l/n_l (Local is 0
	// without local views).
	Global, Local float32
	// TeacherTemp is the temperature the teacher softmax used.
	TeacherTemp float64
}

// DINOState is the part of the DINO loss a checkpoint holds.
type DINOState struct {
	// Center is the running center of the teacher output, [1, OutDim].
	Center []float32
}

// DINOLoss is the DINO self-distillation loss with SSLight's re-balancing.
// Its Apply node takes the student output [(G+L)·B, D] (view-major: rows
// [v·B, (v+1)·B) are view v, the global views first) and the teacher output
// [G·B, D]; the teacher gets no gradient. Every forward updates the center
// after computing the loss.
type DINOLoss struct {
	cfg    DINOConfig
	center []float32
	epoch  int
	last   DINOTerms

	// scratch, sized on first use
	tprob    []float64 // teacher probabilities [G·B, D]
	tsum     []float64 // Σ over teacher views [B, D]
	csum     []float64 // teacher column sums for the center
	rowTerms []float64 // each student row's unweighted cross-entropy sum
	workers  rowScratch
}

// NewDINOLoss checks cfg and returns the loss with a zero center at epoch 0.
func NewDINOLoss(cfg DINOConfig) (*DINOLoss, error) {
	switch {
	case cfg.GlobalCrops < 1 || cfg.LocalCrops < 0:
		return nil, fmt.Errorf("dino: NMB_CROPS [%d, %d]: %w", cfg.GlobalCrops, cfg.LocalCrops, ErrConfig)
	case cfg.GlobalCrops+cfg.LocalCrops < 2:
		return nil, fmt.Errorf("dino: NMB_CROPS [%d, %d] gives no view pairs: %w", cfg.GlobalCrops, cfg.LocalCrops, ErrConfig)
	case cfg.GlobalCrops < 2 && cfg.GlobalOnly:
		return nil, fmt.Errorf("dino: GLOBAL_ONLY with one global view has no global pairs: %w", ErrConfig)
	case !cfg.GlobalOnly && (cfg.GlobalCrops < 2 || cfg.LocalCrops < 1):
		return nil, fmt.Errorf("dino: NMB_CROPS [%d, %d] without GLOBAL_ONLY needs global and local pairs: %w",
			cfg.GlobalCrops, cfg.LocalCrops, ErrConfig)
	case !(cfg.StudentTemp > 0):
		return nil, fmt.Errorf("dino: student temperature %v: %w", cfg.StudentTemp, ErrConfig)
	case len(cfg.TeacherTemps) == 0:
		return nil, fmt.Errorf("dino: empty teacher temperature schedule: %w", ErrConfig)
	case cfg.OutDim < 1:
		return nil, fmt.Errorf("dino: output dim %d: %w", cfg.OutDim, ErrConfig)
	case !(cfg.CenterMomentum >= 0 && cfg.CenterMomentum <= 1):
		return nil, fmt.Errorf("dino: center momentum %v: %w", cfg.CenterMomentum, ErrConfig)
	}
	for i, t := range cfg.TeacherTemps {
		if !(t > 0) {
			return nil, fmt.Errorf("dino: teacher temperature %v at epoch %d: %w", t, i, ErrConfig)
		}
	}
	cfg.TeacherTemps = append([]float64(nil), cfg.TeacherTemps...)
	return &DINOLoss{cfg: cfg, center: make([]float32, cfg.OutDim)}, nil
}

// SetEpoch selects TeacherTemps[epoch] for the following forwards (the
// index is the global step when TeacherTemps is per iteration).
func (l *DINOLoss) SetEpoch(epoch int) error {
	if epoch < 0 || epoch >= len(l.cfg.TeacherTemps) {
		return fmt.Errorf("dino: epoch %d outside the teacher temperature schedule of %d epochs: %w",
			epoch, len(l.cfg.TeacherTemps), ErrConfig)
	}
	l.epoch = epoch
	return nil
}

// Last returns the terms of the last forward.
func (l *DINOLoss) Last() DINOTerms { return l.last }

// State returns a copy of the center.
func (l *DINOLoss) State() DINOState {
	return DINOState{Center: append([]float32(nil), l.center...)}
}

// LoadState replaces the center by a copy of s.Center.
func (l *DINOLoss) LoadState(s DINOState) error {
	if len(s.Center) != l.cfg.OutDim {
		return fmt.Errorf("dino: center of %d values, want %d: %w", len(s.Center), l.cfg.OutDim, ErrShape)
	}
	copy(l.center, s.Center)
	return nil
}

// Apply returns the scalar loss node of student [(G+L)·B, D] and teacher
// [G·B, D].
func (l *DINOLoss) Apply(student, teacher *gorgonia.Node) (*gorgonia.Node, error) {
	if student == nil || teacher == nil {
		return nil, fmt.Errorf("dino: nil input node")
	}
	if _, _, err := l.batch(student.Shape(), teacher.Shape()); err != nil {
		return nil, err
	}
	return applyLoss(dinoKernel{l}, student, teacher)
}

// batch checks the shapes and returns the batch size B and the width D.
func (l *DINOLoss) batch(s, t tensor.Shape) (b, d int, err error) {
	g, v := l.cfg.GlobalCrops, l.cfg.GlobalCrops+l.cfg.LocalCrops
	if s.Dims() != 2 || t.Dims() != 2 {
		return 0, 0, fmt.Errorf("dino: student %v and teacher %v must be matrices: %w", s, t, ErrShape)
	}
	d = l.cfg.OutDim
	if s[1] != d || t[1] != d {
		return 0, 0, fmt.Errorf("dino: student %v and teacher %v must be %d wide: %w", s, t, d, ErrShape)
	}
	if t[0] == 0 || t[0]%g != 0 || s[0] != t[0]/g*v {
		return 0, 0, fmt.Errorf("dino: student %v and teacher %v are not %d and %d views of one batch: %w", s, t, v, g, ErrShape)
	}
	return t[0] / g, d, nil
}

type dinoKernel struct{ l *DINOLoss }

func (k dinoKernel) name() string    { return "DINOLoss" }
func (k dinoKernel) diffWRT() []bool { return []bool{true, false} }

func (k dinoKernel) forward(in [][]float32, shapes []tensor.Shape, grads [][]float32) (float32, error) {
	l := k.l
	b, d, err := l.batch(shapes[0], shapes[1])
	if err != nil {
		return 0, err
	}
	loss := l.compute(in[0], in[1], grads[0], b, d)
	// A NaN or infinite loss comes back as it is: the trainer stops on
	// it, undoes the step and checkpoints the state before it (an error
	// here would not survive gorgonia's VM error wrapping).
	return float32(loss), nil
}

// compute evaluates the loss of student s and teacher t, writes
// d loss / d s into grad and updates the center.
//
// With U_v the sum of the teacher distributions paired with student view v
// (all teacher views but v itself) and c_v their count, the pairs of view v
// contribute Σ_b (c_v·lse(s_vb) − <U_vb, s_vb>)/B, since each teacher row
// sums to 1; its gradient is w_v·(c_v·softmax(s_vb) − U_vb)/(B·τ_s), w_v
// being the pair weight of the view's class. One pass per student row; rows
// are split over goroutines and their terms summed in row order, so the
// result does not depend on the number of workers.
func (l *DINOLoss) compute(s, t, grad []float32, b, d int) float64 {
	cfg := &l.cfg
	g, nv := cfg.GlobalCrops, cfg.GlobalCrops+cfg.LocalCrops
	if len(l.tprob) != g*b*d || len(l.rowTerms) != nv*b {
		l.tprob = make([]float64, g*b*d)
		l.tsum = make([]float64, b*d)
		l.rowTerms = make([]float64, nv*b)
	}
	if len(l.csum) != d {
		l.csum = make([]float64, d)
	}
	workers := l.workers.size(d)
	temp := cfg.TeacherTemps[l.epoch]

	// Teacher: softmax((t − center)/temp).
	parallelRows(g*b, workers, func(lo, hi, _ int) {
		for r := lo; r < hi; r++ {
			p := l.tprob[r*d : (r+1)*d]
			m := math.Inf(-1)
			for j, v := range t[r*d : (r+1)*d] {
				x := (float64(v) - float64(l.center[j])) / temp
				p[j] = x
				if x > m {
					m = x
				}
			}
			var z float64
			for j, x := range p {
				e := math.Exp(x - m)
				p[j] = e
				z += e
			}
			scale(p, 1/z)
		}
	})
	// Sums over the teacher views, and the column sums for the center.
	clear(l.tsum)
	clear(l.csum)
	for r := 0; r < g*b; r++ {
		ts := l.tsum[(r%b)*d : (r%b+1)*d]
		for j, p := range l.tprob[r*d : (r+1)*d] {
			ts[j] += p
			l.csum[j] += float64(t[r*d+j])
		}
	}

	nG, nL := g*(g-1), g*cfg.LocalCrops
	wg, wl := lambdaWeights(cfg.Lambdas, nG, nL, cfg.GlobalOnly)
	invT := 1 / cfg.StudentTemp
	parallelRows(nv*b, workers, func(lo, hi, worker int) {
		row := l.workers.row(worker)
		for r := lo; r < hi; r++ {
			v, bi := r/b, r%b
			c, w := float64(g), wl
			var own []float64
			if v < g {
				c, w = float64(g-1), wg
				own = l.tprob[r*d : (r+1)*d]
			}
			gs := w * invT / float64(b)
			sr := s[r*d : (r+1)*d]
			lse, z := softmaxRow(row, sr, invT)
			u := l.tsum[bi*d : (bi+1)*d]
			gr := grad[r*d : (r+1)*d]
			pScale := c / z
			var dot float64
			for j, x := range sr {
				uj := u[j]
				if own != nil {
					uj -= own[j]
				}
				dot += uj * float64(x)
				gr[j] = float32(gs * (pScale*row[j] - uj))
			}
			l.rowTerms[r] = c*lse - dot*invT
		}
	})
	var gSum, lSum float64
	for r, term := range l.rowTerms {
		if r/b < g {
			gSum += term
		} else {
			lSum += term
		}
	}
	gSum /= float64(b)
	lSum /= float64(b)
	var gTerm, lTerm float64
	if nG > 0 {
		gTerm = gSum / float64(nG)
	}
	if nL > 0 {
		lTerm = lSum / float64(nL)
	}
	loss := gTerm
	if !cfg.GlobalOnly {
		loss = cfg.Lambdas[0]*gTerm + cfg.Lambdas[1]*lTerm
	}
	l.last = DINOTerms{Loss: float32(loss), Global: float32(gTerm), Local: float32(lTerm), TeacherTemp: temp}

	// Center EMA after the loss, in float32 like the reference's buffer.
	m := float32(cfg.CenterMomentum)
	om := float32(1 - cfg.CenterMomentum)
	n := float64(g * b)
	for j := range l.center {
		bc := float32(l.csum[j] / n)
		l.center[j] = float32(l.center[j]*m) + float32(bc*om)
	}
	return loss
}
