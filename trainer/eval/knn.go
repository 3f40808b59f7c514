package eval

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// DefaultKNNTemperature is DINO's temperature T of the neighbour weights
// exp(similarity/T).
const DefaultKNNTemperature = 0.07

// DefaultKs returns the neighbour counts DINO reports: 10, 20, 100, 200.
func DefaultKs() []int { return []int{10, 20, 100, 200} }

// normEps is F.normalize's eps: a vector is divided by max(‖x‖, eps).
const normEps = 1e-12

// Work sizes of the kNN search: a worker takes knnChunk test rows at a time
// and multiplies them with knnTile train rows per BLAS call, so the
// similarity block it holds (knnChunk×knnTile float32, 256 KiB) stays in
// cache while the top-k selection reads it.
const (
	knnChunk = 64
	knnTile  = 1024
)

// KNNResult is the accuracy of the k-nearest-neighbour classifier for one k.
type KNNResult struct {
	K       int     // neighbours used: the requested k, capped at the train size
	Top1    float64 // top-1 accuracy in percent
	Top5    float64 // top-5 accuracy in percent; meaningful only when HasTop5
	HasTop5 bool    // at least 5 classes, so top-5 is defined
}

// KNN runs DINO's weighted k-nearest-neighbour classifier (eval_knn.py,
// knn_classifier) for every k in ks and returns one result per k, in the
// order of ks:
//
//   - train and test features are L2-normalised (F.normalize, eps 1e-12)
//     and compared by cosine similarity;
//   - each test sample takes its k most similar train samples, weighted by
//     exp(similarity/T) (T = DefaultKNNTemperature in DINO);
//   - a class's vote is the sum of the weights of its neighbours; the
//     prediction ranks classes by vote;
//   - top-1 counts the target ranked first, top-5 the target among the first
//     min(5, k), as DINO does (which therefore needs at least 5 classes).
//
// Two differences, both where DINO's result is undefined or an error: a k
// larger than the train set is capped at the train size (DINO's topk fails),
// and ties are broken deterministically, neighbours of equal similarity by
// lower train index and classes of equal vote by lower class index (torch's
// topk and sort leave the order of ties unspecified).
//
// The test set is processed in chunks by GOMAXPROCS workers; the train set
// is never copied (its inverse norms scale the raw dot products), so memory
// beyond the inputs is small.
func KNN(train, test Features, classes int, ks []int, T float64) ([]KNNResult, error) {
	if err := checkPair(train, test, classes); err != nil {
		return nil, fmt.Errorf("knn: %w", err)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("knn: no k given: %w", ErrInput)
	}
	if train.Len() > math.MaxInt32 {
		return nil, fmt.Errorf("knn: %d train samples: at most 2³¹−1 are supported: %w", train.Len(), ErrInput)
	}
	if !(T > 0) || math.IsInf(T, 0) {
		return nil, fmt.Errorf("knn: temperature %v must be positive and finite: %w", T, ErrInput)
	}
	used := make([]int, len(ks))
	kmax := 0
	for i, k := range ks {
		if k <= 0 {
			return nil, fmt.Errorf("knn: k = %d must be positive: %w", k, ErrInput)
		}
		used[i] = min(k, train.Len())
		kmax = max(kmax, used[i])
	}
	hasTop5 := classes >= 5

	type counts struct{ top1, top5 []int }
	var (
		mu    sync.Mutex
		total = counts{make([]int, len(ks)), make([]int, len(ks))}
	)
	search(train, test, kmax, func() (func(int, neighbours), func()) {
		own := counts{make([]int, len(ks)), make([]int, len(ks))}
		votes := make([]float64, classes)
		visit := func(i int, nb neighbours) {
			target := test.Labels[i]
			for j, k := range used {
				vote(nb, k, train.Labels, T, votes)
				r := rankOf(votes, target)
				if r == 0 {
					own.top1[j]++
				}
				if hasTop5 && r < min(5, k) {
					own.top5[j]++
				}
			}
		}
		done := func() {
			mu.Lock()
			defer mu.Unlock()
			for j := range ks {
				total.top1[j] += own.top1[j]
				total.top5[j] += own.top5[j]
			}
		}
		return visit, done
	})

	out := make([]KNNResult, len(ks))
	n := test.Len()
	for j, k := range used {
		out[j] = KNNResult{K: k, Top1: percent(total.top1[j], n), HasTop5: hasTop5}
		if hasTop5 {
			out[j].Top5 = percent(total.top5[j], n)
		}
	}
	return out, nil
}

// vote fills votes (one per class) with the weighted votes of the first k
// neighbours in nb: the sum of exp(sim/T) over the neighbours of each class.
func vote(nb neighbours, k int, labels []int, T float64, votes []float64) {
	clear(votes)
	for n := range k {
		votes[labels[nb.idx[n]]] += math.Exp(float64(nb.sim[n]) / T)
	}
}

// neighbours are a test sample's nearest train samples, most similar first:
// sim[n] is the cosine similarity of train sample idx[n].
type neighbours struct {
	sim []float32
	idx []int32
}

// search finds the kmax nearest train samples of every test sample. Each
// worker calls newWorker once for its own visit and done functions (so
// visitors need no locks), hands visit every test sample it finished (index
// and neighbours, valid during the call only), and calls done when the test
// set is exhausted. The train set holds fewer than 2³¹ samples (KNN checks):
// int32 indices halve the heaps' memory.
func search(train, test Features, kmax int, newWorker func() (visit func(i int, nb neighbours), done func())) {
	d := train.Dim
	nTrain, nTest := train.Len(), test.Len()
	// Inverse train norms: dividing the dot product by the train norm is
	// F.normalize of the train row without a normalised copy of the set.
	inv := make([]float32, nTrain)
	parallelRange(nTrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			inv[i] = invNorm(train.Row(i))
		}
	})

	chunks := (nTest + knnChunk - 1) / knnChunk
	workers := min(runtime.GOMAXPROCS(0), chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			visit, done := newWorker()
			defer done()
			var impl gonum.Implementation
			q := make([]float32, knnChunk*d)
			s := make([]float32, knnChunk*knnTile)
			heaps := make([]topK, knnChunk)
			for r := range heaps {
				heaps[r] = newTopK(kmax)
			}
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				lo := c * knnChunk
				m := min(knnChunk, nTest-lo)
				for r := range m {
					row, out := test.Row(lo+r), q[r*d:(r+1)*d]
					scale := invNorm(row)
					for j, v := range row {
						out[j] = v * scale
					}
					heaps[r].reset()
				}
				for t := 0; t < nTrain; t += knnTile {
					nt := min(knnTile, nTrain-t)
					impl.Sgemm(blas.NoTrans, blas.Trans, m, nt, d,
						1, q, d, train.X[t*d:(t+nt)*d], d, 0, s, nt)
					for r := range m {
						h := &heaps[r]
						sr := s[r*nt : (r+1)*nt]
						for j, v := range sr {
							v *= inv[t+j]
							if h.n < h.k || v > h.sim[0] {
								h.push(v, int32(t+j))
							}
						}
					}
				}
				for r := range m {
					visit(lo+r, heaps[r].sorted())
				}
			}
		}()
	}
	wg.Wait()
}

// invNorm returns 1/max(‖x‖, 1e-12), the factor F.normalize scales x by.
// The sum of squares is accumulated in float64 and rounded once.
func invNorm(x []float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return float32(1 / math.Max(math.Sqrt(s), normEps))
}

// topK keeps the k largest similarities seen so far in a min-heap: the root
// is the worst neighbour kept, so a candidate needs one comparison to be
// rejected. Train indices arrive in increasing order, so a candidate equal
// to the root loses, which keeps the lower index among equal similarities.
type topK struct {
	k, n int
	sim  []float32
	idx  []int32
}

func newTopK(k int) topK {
	return topK{k: k, sim: make([]float32, k), idx: make([]int32, k)}
}

func (h *topK) reset() { h.n = 0 }

// worse reports whether entry a ranks below entry b: lower similarity, or
// equal similarity and a higher train index.
func (h *topK) worse(a, b int) bool {
	return h.sim[a] < h.sim[b] || (h.sim[a] == h.sim[b] && h.idx[a] > h.idx[b])
}

func (h *topK) swap(a, b int) {
	h.sim[a], h.sim[b] = h.sim[b], h.sim[a]
	h.idx[a], h.idx[b] = h.idx[b], h.idx[a]
}

// push adds a candidate: appended while the heap is not full, otherwise it
// replaces the root (the caller has checked it beats the root).
func (h *topK) push(v float32, i int32) {
	if h.n < h.k {
		j := h.n
		h.sim[j], h.idx[j] = v, i
		h.n++
		for j > 0 {
			p := (j - 1) / 2
			if !h.worse(j, p) {
				break
			}
			h.swap(j, p)
			j = p
		}
		return
	}
	h.sim[0], h.idx[0] = v, i
	h.down(0, h.n)
}

func (h *topK) down(j, n int) {
	for {
		l := 2*j + 1
		if l >= n {
			return
		}
		w := l
		if r := l + 1; r < n && h.worse(r, l) {
			w = r
		}
		if !h.worse(w, j) {
			return
		}
		h.swap(j, w)
		j = w
	}
}

// sorted heap-sorts the entries in place, best first, and returns them. The
// heap must be reset before it is used again.
func (h *topK) sorted() neighbours {
	n := h.n
	for end := n - 1; end > 0; end-- {
		h.swap(0, end) // the worst remaining goes to the back
		h.down(0, end)
	}
	return neighbours{sim: h.sim[:n], idx: h.idx[:n]}
}

// parallelRange splits [0, n) into one contiguous range per GOMAXPROCS
// worker and runs f on each.
func parallelRange(n int, f func(lo, hi int)) {
	w := min(runtime.GOMAXPROCS(0), n)
	if w <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := i*n/w, (i+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
