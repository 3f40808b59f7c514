package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MoCoConfig holds the settings of the MoCo-v2 loss with local views under
// the reference's meaning (cfg.MULTI_VIEWS_TRANSFORMS and cfg.MOCO).
type MoCoConfig struct {
	// GlobalCrops and LocalCrops are NMB_CROPS; MoCo needs 2 global views
	// (the key comes from the first, the queries from the second and the
	// local views).
	GlobalCrops, LocalCrops int
	// Lambdas weight the global query's mean and the local queries' mean.
	Lambdas [2]float64
	// GlobalOnly uses the second global view as the only query.
	GlobalOnly bool
	// Dim is the projection width C (128).
	Dim int
	// QueueLength is the number of negative keys Kq (65536); a multiple of
	// the batch size.
	QueueLength int
	// Temperature divides the logits (0.2).
	Temperature float64
	// Seed draws the initial queue: random normal columns, L2-normalised,
	// as the reference's randn + normalize(dim=0).
	Seed uint64
}

// MoCoState is the part of the MoCo loss a checkpoint holds.
type MoCoState struct {
	// Queue is [Dim, QueueLength] row-major: column j is a stored key.
	Queue []float32
	// Ptr is the column the next batch of keys is written at.
	Ptr int
}

// MoCoLoss is the MoCo-v2 InfoNCE loss with SSLight's local views. Its
// Apply node takes the query head output qRaw [nq·B, C] (the second global
// view, then the L local views; GlobalOnly: the second global view alone)
// and the key head output kRaw [B, C] of the first global view; only qRaw
// gets a gradient (through the normalisation). Every forward enqueues the
// normalised keys afterwards.
type MoCoLoss struct {
	cfg    MoCoConfig
	nq     int
	queue  []float32
	queueT []float32 // queue transposed, [Kq, C]; nil until the first forward after a load
	ptr    int
	last   float32

	// Record keeps the normalised q and k, the logits [nq·B, 1+Kq] and
	// the gradient w.r.t. the normalised q of every forward (for tests and
	// debugging; the logits cost nq·B·(1+Kq) floats).
	Record   bool
	recorded MoCoRecord

	qn, kn  []float32 // normalised q and k
	norms   []float64 // ‖q_raw‖ per row
	logits  []float32 // one block of rows × Kq
	gq      []float32 // d loss / d q for one block
	rowWgts []float64
	p0      []float64 // softmax of the positive logit, per block row
}

// MoCoRecord holds the intermediate values of the last forward when
// MoCoLoss.Record is set.
type MoCoRecord struct {
	Q, K, Logits, GradQ []float32
}

// mocoBlock is the number of query rows whose logits are held at once.
const mocoBlock = 64

// NewMoCoLoss checks cfg and returns the loss with a random unit queue and
// pointer 0.
func NewMoCoLoss(cfg MoCoConfig) (*MoCoLoss, error) {
	switch {
	case cfg.GlobalCrops != 2 || cfg.LocalCrops < 0:
		return nil, fmt.Errorf("moco: NMB_CROPS [%d, %d], need 2 global views: %w", cfg.GlobalCrops, cfg.LocalCrops, ErrConfig)
	case !cfg.GlobalOnly && cfg.LocalCrops == 0:
		return nil, fmt.Errorf("moco: no local views without GLOBAL_ONLY (the local mean divides by 0): %w", ErrConfig)
	case cfg.Dim < 1 || cfg.QueueLength < 1:
		return nil, fmt.Errorf("moco: dim %d, queue %d: %w", cfg.Dim, cfg.QueueLength, ErrConfig)
	case !(cfg.Temperature > 0):
		return nil, fmt.Errorf("moco: temperature %v: %w", cfg.Temperature, ErrConfig)
	}
	l := &MoCoLoss{cfg: cfg, nq: 1}
	if !cfg.GlobalOnly {
		l.nq = 1 + cfg.LocalCrops
	}
	l.queue = make([]float32, cfg.Dim*cfg.QueueLength)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d6f636f))
	for i := range l.queue {
		l.queue[i] = float32(rng.NormFloat64())
	}
	for j := 0; j < cfg.QueueLength; j++ {
		var s float64
		for c := 0; c < cfg.Dim; c++ {
			v := float64(l.queue[c*cfg.QueueLength+j])
			s += v * v
		}
		inv := 1 / math.Max(math.Sqrt(s), 1e-12)
		for c := 0; c < cfg.Dim; c++ {
			l.queue[c*cfg.QueueLength+j] = float32(float64(l.queue[c*cfg.QueueLength+j]) * inv)
		}
	}
	return l, nil
}

// QueryViews is nq, the number of B-row query chunks Apply expects.
func (l *MoCoLoss) QueryViews() int { return l.nq }

// Last returns the loss of the last forward.
func (l *MoCoLoss) Last() float32 { return l.last }

// Recorded returns the values kept by the last forward when Record is set.
func (l *MoCoLoss) Recorded() MoCoRecord { return l.recorded }

// State returns a copy of the queue and the pointer.
func (l *MoCoLoss) State() MoCoState {
	return MoCoState{Queue: append([]float32(nil), l.queue...), Ptr: l.ptr}
}

// LoadState replaces the queue and the pointer by a copy of s.
func (l *MoCoLoss) LoadState(s MoCoState) error {
	if len(s.Queue) != len(l.queue) {
		return fmt.Errorf("moco: queue of %d values, want %d × %d: %w", len(s.Queue), l.cfg.Dim, l.cfg.QueueLength, ErrShape)
	}
	if s.Ptr < 0 || s.Ptr >= l.cfg.QueueLength {
		return fmt.Errorf("moco: queue pointer %d outside [0, %d): %w", s.Ptr, l.cfg.QueueLength, ErrShape)
	}
	copy(l.queue, s.Queue)
	l.queueT = nil
	l.ptr = s.Ptr
	return nil
}

// Apply returns the scalar loss node of qRaw [nq·B, C] and kRaw [B, C].
func (l *MoCoLoss) Apply(qRaw, kRaw *gorgonia.Node) (*gorgonia.Node, error) {
	if qRaw == nil || kRaw == nil {
		return nil, fmt.Errorf("moco: nil input node")
	}
	if _, err := l.batch(qRaw.Shape(), kRaw.Shape()); err != nil {
		return nil, err
	}
	return applyLoss(mocoKernel{l}, qRaw, kRaw)
}

func (l *MoCoLoss) batch(q, k tensor.Shape) (int, error) {
	c := l.cfg.Dim
	if q.Dims() != 2 || k.Dims() != 2 || q[1] != c || k[1] != c || k[0] == 0 || q[0] != l.nq*k[0] {
		return 0, fmt.Errorf("moco: queries %v and keys %v are not [%d·B, %d] and [B, %d]: %w", q, k, l.nq, c, c, ErrShape)
	}
	if l.cfg.QueueLength%k[0] != 0 {
		return 0, fmt.Errorf("moco: queue length %d is not a multiple of the batch %d: %w", l.cfg.QueueLength, k[0], ErrShape)
	}
	return k[0], nil
}

type mocoKernel struct{ l *MoCoLoss }

func (k mocoKernel) name() string    { return "MoCoLoss" }
func (k mocoKernel) diffWRT() []bool { return []bool{true, false} }

func (k mocoKernel) forward(in [][]float32, shapes []tensor.Shape, grads [][]float32) (float32, error) {
	l := k.l
	b, err := l.batch(shapes[0], shapes[1])
	if err != nil {
		return 0, err
	}
	if l.ptr+b > l.cfg.QueueLength {
		// Only a loaded pointer that is not a multiple of B gets here.
		return 0, fmt.Errorf("moco: queue pointer %d + batch %d overruns the queue of %d: %w", l.ptr, b, l.cfg.QueueLength, ErrShape)
	}
	loss := l.compute(in[0], in[1], grads[0], b)
	// A NaN or infinite loss comes back as it is: the trainer stops on
	// it, undoes the step and checkpoints the state before it (an error
	// here would not survive gorgonia's VM error wrapping).
	return float32(loss), nil
}

// normalizeRows writes x's rows divided by max(‖row‖, 1e-12) into dst (as
// torch's F.normalize) and returns the clamped norms into norms.
func normalizeRows(dst, x []float32, c int, norms []float64) {
	for r := 0; r < len(x)/c; r++ {
		n := math.Max(math.Sqrt(dot32(x[r*c:(r+1)*c], x[r*c:(r+1)*c])), 1e-12)
		if norms != nil {
			norms[r] = n
		}
		for j, v := range x[r*c : (r+1)*c] {
			dst[r*c+j] = float32(float64(v) / n)
		}
	}
}

// compute evaluates the loss, writes d loss / d qRaw into grad and
// enqueues the keys. Per query row r with weight w_r (its chunk's mean
// weight), logits z = [<q_r, k_(r mod B)>, q_r·queue]/T and
// CE = lse(z) − z_0; d CE / d q_r = ((p_0 − 1)·k + queue·p_neg)/T with
// p = softmax(z). Rows go through in blocks so only block × Kq logits are
// held, and both products run through gorgonia's BLAS.
func (l *MoCoLoss) compute(qRaw, kRaw, grad []float32, b int) float64 {
	c, kq := l.cfg.Dim, l.cfg.QueueLength
	n := l.nq * b
	if len(l.qn) != n*c {
		l.qn = make([]float32, n*c)
		l.norms = make([]float64, n)
		l.rowWgts = make([]float64, n)
	}
	if len(l.kn) != b*c {
		l.kn = make([]float32, b*c)
	}
	blk := min(mocoBlock, n)
	if len(l.logits) != blk*kq {
		l.logits = make([]float32, blk*kq)
		l.gq = make([]float32, blk*c)
		l.p0 = make([]float64, blk)
	}
	if l.queueT == nil {
		l.queueT = make([]float32, kq*c)
		for j := 0; j < c; j++ {
			for i, v := range l.queue[j*kq : (j+1)*kq] {
				l.queueT[i*c+j] = v
			}
		}
	}
	normalizeRows(l.qn, qRaw, c, l.norms)
	normalizeRows(l.kn, kRaw, c, nil)
	for r := range l.rowWgts {
		switch {
		case l.cfg.GlobalOnly:
			l.rowWgts[r] = 1 / float64(n)
		case r < b:
			l.rowWgts[r] = l.cfg.Lambdas[0] / float64(b)
		default:
			l.rowWgts[r] = l.cfg.Lambdas[1] / float64(b*l.cfg.LocalCrops)
		}
	}
	var rec *MoCoRecord
	if l.Record {
		rec = &l.recorded
		rec.Q = append(rec.Q[:0], l.qn...)
		rec.K = append(rec.K[:0], l.kn...)
		rec.Logits = resize(rec.Logits, n*(1+kq))
		rec.GradQ = resize(rec.GradQ, n*c)
	}

	bl := gorgonia.WhichBLAS()
	invT := 1 / l.cfg.Temperature
	var loss float64
	for r0 := 0; r0 < n; r0 += blk {
		m := min(blk, n-r0)
		lg := l.logits[:m*kq]
		// l_neg = q_blk · queue: [m, C] × [C, Kq].
		bl.Sgemm(blas.NoTrans, blas.NoTrans, m, kq, c, 1, l.qn[r0*c:], c, l.queue, kq, 0, lg, kq)
		for i := 0; i < m; i++ {
			r := r0 + i
			q := l.qn[r*c : (r+1)*c]
			pos := dot32(q, l.kn[(r%b)*c:(r%b+1)*c]) * invT
			row := lg[i*kq : (i+1)*kq]
			mx := pos
			for _, v := range row {
				if x := float64(v) * invT; x > mx {
					mx = x
				}
			}
			if rec != nil {
				out := rec.Logits[r*(1+kq) : (r+1)*(1+kq)]
				out[0] = float32(pos)
				for j, v := range row {
					out[1+j] = float32(float64(v) * invT)
				}
			}
			// Overwrite the logits with their exponentials, then with the
			// softmax of the negatives.
			z := math.Exp(pos - mx)
			for j, v := range row {
				e := math.Exp(float64(v)*invT - mx)
				row[j] = float32(e)
				z += e
			}
			lse := mx + math.Log(z)
			loss += l.rowWgts[r] * (lse - pos)
			invZ := float32(1 / z)
			for j := range row {
				row[j] *= invZ
			}
			l.p0[i] = math.Exp(pos - lse)
		}
		// d CE / d q (before the 1/T and weight): queue · p_neg = p_blk · queueᵀ,
		// through the transposed copy (gonum's NoTrans product is the faster).
		g := l.gq[:m*c]
		bl.Sgemm(blas.NoTrans, blas.NoTrans, m, c, kq, 1, lg, kq, l.queueT, c, 0, g, c)
		for i := 0; i < m; i++ {
			r := r0 + i
			s := l.rowWgts[r] * invT
			kr := l.kn[(r%b)*c : (r%b+1)*c]
			gr := g[i*c : (i+1)*c]
			q := l.qn[r*c : (r+1)*c]
			var gqDot float64
			for j := range gr {
				v := s * (float64(gr[j]) + (l.p0[i]-1)*float64(kr[j]))
				gr[j] = float32(v)
				gqDot += v * float64(q[j])
			}
			if rec != nil {
				copy(rec.GradQ[r*c:(r+1)*c], gr)
			}
			// Through the normalisation: (g − q<q, g>)/‖x‖, or g/1e-12 where
			// the norm is clamped (constant denominator).
			dst := grad[r*c : (r+1)*c]
			inv := 1 / l.norms[r]
			if l.norms[r] <= 1e-12 {
				gqDot = 0
			}
			for j := range gr {
				dst[j] = float32((float64(gr[j]) - float64(q[j])*gqDot) * inv)
			}
		}
	}
	l.last = float32(loss)

	// Enqueue the keys: queue[:, ptr:ptr+B] = kᵀ.
	for r := 0; r < b; r++ {
		for j := 0; j < c; j++ {
			l.queue[j*kq+l.ptr+r] = l.kn[r*c+j]
		}
	}
	copy(l.queueT[l.ptr*c:(l.ptr+b)*c], l.kn)
	l.ptr = (l.ptr + b) % kq
	return loss
}

func resize(x []float32, n int) []float32 {
	if cap(x) < n {
		return make([]float32, n)
	}
	return x[:n]
}
