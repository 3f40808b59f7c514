package ssl

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SwAVConfig holds the settings of the SwAV loss under the reference's
// meaning (cfg.MULTI_VIEWS_TRANSFORMS and cfg.SWAV).
type SwAVConfig struct {
	// GlobalCrops and LocalCrops are NMB_CROPS.
	GlobalCrops, LocalCrops int
	// Lambdas weight the global-global and the other mean terms.
	Lambdas [2]float64
	// CropsForAssign are the views whose codes are predicted
	// (CROPS_FOR_ASSIGN, usually [0, 1]).
	CropsForAssign []int
	// Temperature divides the prototype scores (0.1).
	Temperature float64
	// Epsilon and SinkhornIterations configure Sinkhorn (0.05, 3).
	Epsilon            float64
	SinkhornIterations int
}

// SwAVState is the part of the SwAV loss a checkpoint holds.
type SwAVState struct {
	// Queue holds past embeddings, [len(CropsForAssign), QueueLength,
	// EmbeddingDim] row-major, newest first; nil when no queue is active.
	Queue []float32
	// QueueLength and EmbeddingDim give Queue's shape.
	QueueLength, EmbeddingDim int
	// UseQueue is the reference's use_the_queue flag.
	UseQueue bool
}

// SwAVLoss is the SwAV swapped-prediction loss with SSLight's re-balancing.
// Its Apply node takes the prototype scores output [(G+L)·B, K]
// (view-major), the embeddings [(G+L)·B, E] and the prototype weights
// [K, E]; only output gets a gradient (codes are computed without one).
//
// The queue is off until StartQueue (the reference creates it at
// SWAV.EPOCH_QUEUE_STARTS). While on, every forward scores the queue
// content from before this step against the prototypes, prepends those
// scores to Sinkhorn's input once the queue is in use (use_the_queue, or its
// last row is non-zero), then shifts the queue by B rows and stores this
// step's embeddings of the assigned crops at its front.
type SwAVLoss struct {
	cfg         SwAVConfig
	nG, nL      int
	queue       []float32
	qLen, eDim  int
	useQueue    bool
	assignments []float32 // last codes [len(CropsForAssign), B, K]
	last        float32

	scores []float64 // Sinkhorn input and codes, [(Qlen+B), K]
	codes  []float64 // codes of every assigned crop, [len(CropsForAssign), B, K]
	qsum   []float64 // row sums of the codes
	row    []float64
	colSum []float64
}

// NewSwAVLoss checks cfg and returns the loss with no queue.
func NewSwAVLoss(cfg SwAVConfig) (*SwAVLoss, error) {
	nv := cfg.GlobalCrops + cfg.LocalCrops
	switch {
	case cfg.GlobalCrops < 0 || cfg.LocalCrops < 0 || nv < 2:
		return nil, fmt.Errorf("swav: NMB_CROPS [%d, %d]: %w", cfg.GlobalCrops, cfg.LocalCrops, ErrConfig)
	case len(cfg.CropsForAssign) == 0:
		return nil, fmt.Errorf("swav: empty CROPS_FOR_ASSIGN: %w", ErrConfig)
	case !(cfg.Temperature > 0) || !(cfg.Epsilon > 0) || cfg.SinkhornIterations < 0:
		return nil, fmt.Errorf("swav: temperature %v, epsilon %v, %d Sinkhorn iterations: %w",
			cfg.Temperature, cfg.Epsilon, cfg.SinkhornIterations, ErrConfig)
	}
	l := &SwAVLoss{cfg: cfg}
	l.cfg.CropsForAssign = append([]int(nil), cfg.CropsForAssign...)
	for _, c := range cfg.CropsForAssign {
		if c < 0 || c >= nv {
			return nil, fmt.Errorf("swav: CROPS_FOR_ASSIGN holds %d, outside the %d views: %w", c, nv, ErrConfig)
		}
		for v := 0; v < nv; v++ {
			if v == c {
				continue
			}
			if c < cfg.GlobalCrops && v < cfg.GlobalCrops {
				l.nG++
			} else {
				l.nL++
			}
		}
	}
	if l.nG == 0 || l.nL == 0 {
		// The reference divides by both pair counts.
		return nil, fmt.Errorf("swav: NMB_CROPS [%d, %d] with CROPS_FOR_ASSIGN %v gives %d global and %d local pairs, need both: %w",
			cfg.GlobalCrops, cfg.LocalCrops, cfg.CropsForAssign, l.nG, l.nL, ErrConfig)
	}
	return l, nil
}

// StartQueue creates an all-zero queue of length rows of embeddingDim
// values per assigned crop, unless one exists (the reference's check
// `queue is None`). length must be at least the batch size when the loss
// runs. It also clears the use_the_queue flag, which the reference resets
// at the start of every epoch; call StartEpoch for that alone.
func (l *SwAVLoss) StartQueue(length, embeddingDim int) error {
	if length < 1 || embeddingDim < 1 {
		return fmt.Errorf("swav: queue of %d × %d: %w", length, embeddingDim, ErrConfig)
	}
	if l.queue == nil {
		l.queue = make([]float32, len(l.cfg.CropsForAssign)*length*embeddingDim)
		l.qLen, l.eDim = length, embeddingDim
	}
	l.useQueue = false
	return nil
}

// StartEpoch clears the use_the_queue flag, as the reference does before
// every epoch; the queue is used again once its last row is filled.
func (l *SwAVLoss) StartEpoch() { l.useQueue = false }

// Assignments returns the codes of the last forward,
// [len(CropsForAssign), B, K] row-major (a view of the loss's buffer).
func (l *SwAVLoss) Assignments() []float32 { return l.assignments }

// Last returns the loss of the last forward.
func (l *SwAVLoss) Last() float32 { return l.last }

// State returns a copy of the queue and the flag.
func (l *SwAVLoss) State() SwAVState {
	s := SwAVState{UseQueue: l.useQueue}
	if l.queue != nil {
		s.Queue = append([]float32(nil), l.queue...)
		s.QueueLength, s.EmbeddingDim = l.qLen, l.eDim
	}
	return s
}

// LoadState replaces the queue and the flag by a copy of s.
func (l *SwAVLoss) LoadState(s SwAVState) error {
	if s.Queue == nil {
		l.queue, l.qLen, l.eDim = nil, 0, 0
		l.useQueue = s.UseQueue
		return nil
	}
	if s.QueueLength < 1 || s.EmbeddingDim < 1 || len(s.Queue) != len(l.cfg.CropsForAssign)*s.QueueLength*s.EmbeddingDim {
		return fmt.Errorf("swav: queue of %d values for %d crops × %d × %d: %w",
			len(s.Queue), len(l.cfg.CropsForAssign), s.QueueLength, s.EmbeddingDim, ErrShape)
	}
	l.queue = append([]float32(nil), s.Queue...)
	l.qLen, l.eDim = s.QueueLength, s.EmbeddingDim
	l.useQueue = s.UseQueue
	return nil
}

// Apply returns the scalar loss node of output [(G+L)·B, K], embedding
// [(G+L)·B, E] and prototypes [K, E].
func (l *SwAVLoss) Apply(output, embedding, prototypes *gorgonia.Node) (*gorgonia.Node, error) {
	if output == nil || embedding == nil || prototypes == nil {
		return nil, fmt.Errorf("swav: nil input node")
	}
	if _, _, _, err := l.dims([]tensor.Shape{output.Shape(), embedding.Shape(), prototypes.Shape()}); err != nil {
		return nil, err
	}
	return applyLoss(swavKernel{l}, output, embedding, prototypes)
}

// dims checks the shapes and returns B, K and E.
func (l *SwAVLoss) dims(s []tensor.Shape) (b, k, e int, err error) {
	nv := l.cfg.GlobalCrops + l.cfg.LocalCrops
	o, em, w := s[0], s[1], s[2]
	if o.Dims() != 2 || em.Dims() != 2 || w.Dims() != 2 {
		return 0, 0, 0, fmt.Errorf("swav: output %v, embedding %v, prototypes %v must be matrices: %w", o, em, w, ErrShape)
	}
	if o[0] == 0 || o[0]%nv != 0 || em[0] != o[0] || w[0] != o[1] || w[1] != em[1] {
		return 0, 0, 0, fmt.Errorf("swav: output %v, embedding %v, prototypes %v are not [%d·B, K], [%d·B, E], [K, E]: %w",
			o, em, w, nv, nv, ErrShape)
	}
	return o[0] / nv, o[1], em[1], nil
}

type swavKernel struct{ l *SwAVLoss }

func (k swavKernel) name() string    { return "SwAVLoss" }
func (k swavKernel) diffWRT() []bool { return []bool{true, false, false} }

func (k swavKernel) forward(in [][]float32, shapes []tensor.Shape, grads [][]float32) (float32, error) {
	l := k.l
	b, nk, e, err := l.dims(shapes)
	if err != nil {
		return 0, err
	}
	if l.queue != nil {
		if e != l.eDim {
			return 0, fmt.Errorf("swav: embedding width %d, queue holds %d: %w", e, l.eDim, ErrShape)
		}
		if l.qLen < b {
			return 0, fmt.Errorf("swav: queue of %d rows shorter than the batch of %d: %w", l.qLen, b, ErrShape)
		}
	}
	if err := l.assign(in[0], in[1], in[2], b, nk, e); err != nil {
		return 0, err
	}
	loss := l.predict(in[0], grads[0], b, nk)
	// A NaN or infinite loss comes back as it is: the trainer stops on
	// it, undoes the step and checkpoints the state before it (an error
	// here would not survive gorgonia's VM error wrapping).
	return float32(loss), nil
}

// assign computes the codes of every assigned crop (using the queue as it
// was before this step) and advances the queue.
func (l *SwAVLoss) assign(out, emb, w []float32, b, k, e int) error {
	nA := len(l.cfg.CropsForAssign)
	rows := b
	if l.queue != nil {
		rows += l.qLen
	}
	if cap(l.scores) < rows*k {
		l.scores = make([]float64, rows*k)
	}
	if len(l.codes) != nA*b*k {
		l.codes = make([]float64, nA*b*k)
		l.qsum = make([]float64, nA*b)
		l.assignments = make([]float32, nA*b*k)
	}
	if len(l.row) != k {
		l.row = make([]float64, k)
		l.colSum = make([]float64, k)
	}
	for i, crop := range l.cfg.CropsForAssign {
		sc := l.scores[:b*k]
		if l.queue != nil {
			qi := l.queue[i*l.qLen*e : (i+1)*l.qLen*e]
			if !l.useQueue && !allZero(qi[(l.qLen-1)*e:]) {
				l.useQueue = true
			}
			if l.useQueue {
				sc = l.scores[:(l.qLen+b)*k]
				for r := 0; r < l.qLen; r++ {
					x := qi[r*e : (r+1)*e]
					for j := 0; j < k; j++ {
						sc[r*k+j] = dot32(x, w[j*e:(j+1)*e])
					}
				}
			}
			// Shift down by b rows, newest embeddings first.
			copy(qi[b*e:], qi[:(l.qLen-b)*e])
			copy(qi[:b*e], emb[crop*b*e:(crop+1)*b*e])
		}
		oc := out[crop*b*k : (crop+1)*b*k]
		base := len(sc) - b*k
		for j, v := range oc {
			sc[base+j] = float64(v)
		}
		if err := sinkhorn64(sc, len(sc)/k, k, l.cfg.Epsilon, l.cfg.SinkhornIterations, l.colSum); err != nil {
			return fmt.Errorf("swav: codes of crop %d: %w", crop, err)
		}
		codes := l.codes[i*b*k : (i+1)*b*k]
		copy(codes, sc[base:])
		for r := 0; r < b; r++ {
			var s float64
			for j, v := range codes[r*k : (r+1)*k] {
				s += v
				l.assignments[i*b*k+r*k+j] = float32(v)
			}
			l.qsum[i*b+r] = s
		}
	}
	return nil
}

// predict returns the re-balanced cross-entropy between the codes and the
// softmax of every other view's scores and writes its gradient into grad.
// For a pair (code q, view v) and a row, CE = lse(x)·Σq − <q, x> with
// x = output/T, and d CE / d x = softmax(x)·Σq − q.
func (l *SwAVLoss) predict(out, grad []float32, b, k int) float64 {
	cfg := &l.cfg
	nv := cfg.GlobalCrops + cfg.LocalCrops
	wg, wl := lambdaWeights(cfg.Lambdas, l.nG, l.nL, false)
	invT := 1 / cfg.Temperature
	var gSum, lSum float64
	for v := 0; v < nv; v++ {
		gr := grad[v*b*k : (v+1)*b*k]
		clear(gr)
		for r := 0; r < b; r++ {
			x := out[(v*b+r)*k : (v*b+r+1)*k]
			lse, z := softmaxRow(l.row, x, invT)
			g := gr[r*k : (r+1)*k]
			for i, crop := range cfg.CropsForAssign {
				if crop == v {
					continue
				}
				w, global := wl, false
				if crop < cfg.GlobalCrops && v < cfg.GlobalCrops {
					w, global = wg, true
				}
				q := l.codes[(i*b+r)*k : (i*b+r+1)*k]
				qs := l.qsum[i*b+r]
				var d float64
				for j, xv := range x {
					d += q[j] * float64(xv)
				}
				ce := (lse*qs - d*invT) / float64(b)
				if global {
					gSum += ce
				} else {
					lSum += ce
				}
				gs := w * invT / float64(b)
				ps := qs / z
				for j := range g {
					g[j] += float32(gs * (ps*l.row[j] - q[j]))
				}
			}
		}
	}
	loss := cfg.Lambdas[0]*gSum/float64(l.nG) + cfg.Lambdas[1]*lSum/float64(l.nL)
	l.last = float32(loss)
	return loss
}

func allZero(x []float32) bool {
	for _, v := range x {
		if v != 0 {
			return false
		}
	}
	return true
}

// dot32 is <a, b> accumulated in float64.
func dot32(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}
