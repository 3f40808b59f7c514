package cocoeval

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/sslight-go/sslight/sinks/coco"
)

// Eval holds the accumulated evaluation (pycocotools' COCOeval.eval) and
// its summary.
type Eval struct {
	Params Params
	// CategoryIDs are the evaluated categories in id order (index K).
	CategoryIDs []int64
	// Precision is [T][R][K][A][M] flattened in that order: interpolated
	// precision at each recall threshold, −1 where the category has no
	// ground truth in that area range.
	Precision []float64
	// Recall is [T][K][A][M] flattened: the recall reached, −1 as above.
	Recall []float64
	// Stats are summarize()'s 12 numbers: AP, AP50, AP75, APs, APm, APl,
	// AR1, AR10, AR100, ARs, ARm, ARl (−1 where nothing is defined).
	Stats []float64
}

// StatNames names Eval.Stats in order.
var StatNames = []string{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"}

// PrecisionAt returns precision[t, r, k, a, m].
func (e *Eval) PrecisionAt(t, r, k, a, m int) float64 {
	R, K, A, M := len(e.Params.RecallThresholds), len(e.CategoryIDs), len(e.Params.AreaRanges), len(e.Params.MaxDets)
	return e.Precision[(((t*R+r)*K+k)*A+a)*M+m]
}

// RecallAt returns recall[t, k, a, m].
func (e *Eval) RecallAt(t, k, a, m int) float64 {
	K, A, M := len(e.CategoryIDs), len(e.Params.AreaRanges), len(e.Params.MaxDets)
	return e.Recall[((t*K+k)*A+a)*M+m]
}

// Evaluate runs COCOeval's evaluate, accumulate and summarize on dt
// against gt with parameters p (dt must have been loaded against gt, and
// p.IoUType must be the type it was loaded for). Categories are evaluated in parallel on GOMAXPROCS goroutines; the
// result does not depend on their number.
func Evaluate(ctx context.Context, gt *GroundTruth, dt *Detections, p Params) (*Eval, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if dt.gt != gt {
		return nil, fmt.Errorf("results %s were loaded against another ground truth than %s", dt.name, gt.name)
	}
	if dt.iouType != p.IoUType {
		return nil, fmt.Errorf("results %s were loaded for %s evaluation, not %s", dt.name, dt.iouType, p.IoUType)
	}
	if p.IoUType == IoUSegm {
		if err := gt.PrepareMasks(); err != nil {
			return nil, err
		}
	}
	K := len(gt.categories)
	T, R, A, M := len(p.IoUThresholds), len(p.RecallThresholds), len(p.AreaRanges), len(p.MaxDets)
	e := &Eval{
		Params:      p,
		CategoryIDs: make([]int64, K),
		Precision:   make([]float64, T*R*K*A*M),
		Recall:      make([]float64, T*K*A*M),
	}
	for k, c := range gt.categories {
		e.CategoryIDs[k] = c.ID
	}
	for i := range e.Precision {
		e.Precision[i] = -1
	}
	for i := range e.Recall {
		e.Recall[i] = -1
	}

	// Objects of each category, by image; ground truth in file order and
	// detections by descending score, ties in file order (pycocotools'
	// stable mergesort), within each image.
	gtBy := make([][]int32, K)
	for i, a := range gt.anns {
		gtBy[a.cat] = append(gtBy[a.cat], int32(i))
	}
	dtBy := make([][]int32, K)
	for i, d := range dt.list {
		dtBy[d.cat] = append(dtBy[d.cat], int32(i))
	}
	for k := range K {
		slices.SortStableFunc(gtBy[k], func(a, b int32) int { return cmp.Compare(gt.anns[a].img, gt.anns[b].img) })
		slices.SortStableFunc(dtBy[k], func(a, b int32) int {
			da, db := &dt.list[a], &dt.list[b]
			if c := cmp.Compare(da.img, db.img); c != 0 {
				return c
			}
			return cmp.Compare(db.score, da.score)
		})
	}

	ev := &evaluator{gt: gt, dt: dt, p: p, e: e}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(K, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s scratch
			for k := range next {
				ev.category(k, gtBy[k], dtBy[k], &s)
			}
		}()
	}
	var err error
	for k := range K {
		if err = ctx.Err(); err != nil {
			break
		}
		next <- k
	}
	close(next)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	e.Stats = e.summarize()
	return e, nil
}

// evaluator is the state shared by the per-category workers. Each worker
// writes only its own category's entries of Precision and Recall.
type evaluator struct {
	gt *GroundTruth
	dt *Detections
	p  Params
	e  *Eval
}

// cellEval is pycocotools' evaluateImg result for one image and category,
// for every area range at once.
type cellEval struct {
	scores []float64 // detection scores, best first, at most maxDets[-1]
	// matched[(a·T+t)·D+d]: detection d matched a ground-truth object with
	// a non-zero id at threshold t (pycocotools' dtMatches != 0);
	// ignored likewise is dtIgnore.
	matched, ignored []bool
	npig             []int // per area range: ground truth not ignored
}

// scratch holds one worker's reusable buffers.
type scratch struct {
	ious      []float64
	order     []int
	gtIg, gtm []bool
	rc, pr    []float64
	entries   []entry
	kept      []entry
	cells     []cellEval
}

// entry is one detection of a category in accumulate's concatenation.
type entry struct {
	score float64
	cell  int32
	d     int32
}

// category evaluates every image of category k and accumulates its
// precision and recall.
func (ev *evaluator) category(k int, gts, dts []int32, s *scratch) {
	gt, dt, p := ev.gt, ev.dt, ev.p
	maxDet := p.MaxDets[len(p.MaxDets)-1]
	s.cells = s.cells[:0]
	for len(gts) > 0 || len(dts) > 0 {
		// The next image with objects of this category.
		img := int32(len(gt.images))
		if len(gts) > 0 {
			img = gt.anns[gts[0]].img
		}
		if len(dts) > 0 {
			img = min(img, dt.list[dts[0]].img)
		}
		ng := 0
		for ng < len(gts) && gt.anns[gts[ng]].img == img {
			ng++
		}
		nd := 0
		for nd < len(dts) && dt.list[dts[nd]].img == img {
			nd++
		}
		s.cells = append(s.cells, ev.image(gts[:ng], dts[:min(nd, maxDet)], s))
		gts, dts = gts[ng:], dts[nd:]
	}
	ev.accumulate(k, s)
}

// image is evaluateImg for one image and category over all area ranges:
// IoUs once, then greedy matching per area range and threshold.
func (ev *evaluator) image(gts, dts []int32, s *scratch) cellEval {
	gt, dt, p := ev.gt, ev.dt, ev.p
	G, D := len(gts), len(dts)
	T, A := len(p.IoUThresholds), len(p.AreaRanges)
	c := cellEval{
		scores:  make([]float64, D),
		matched: make([]bool, 2*A*T*D),
		npig:    make([]int, A),
	}
	c.matched, c.ignored = c.matched[:A*T*D], c.matched[A*T*D:]
	for d, j := range dts {
		c.scores[d] = dt.list[j].score
	}

	// ious[d·G+g] in the ground truth's file order.
	s.ious = grow(s.ious, D*G)
	for d, j := range dts {
		det := &dt.list[j]
		for g, i := range gts {
			a := &gt.anns[i]
			var v float64
			if p.IoUType == IoUSegm {
				// rleIou compares the masks only where their boxes overlap.
				if coco.BoxIoU(det.maskBox, a.maskBox, a.crowd) > 0 {
					v = coco.MaskIoU(det.mask, a.mask, a.crowd)
				}
			} else {
				v = coco.BoxIoU(det.box, a.box, a.crowd)
			}
			s.ious[d*G+g] = v
		}
	}

	s.order = growInt(s.order, G)
	s.gtIg = growBool(s.gtIg, G)
	s.gtm = growBool(s.gtm, G)
	for a, rng := range p.AreaRanges {
		// Ground truth ignored in this range goes last, otherwise in file
		// order (a stable sort on the ignore flag).
		n := 0
		for g, i := range gts {
			ann := &gt.anns[i]
			if !(ann.crowd || ann.area < rng.Min || ann.area > rng.Max) {
				s.order[n] = g
				n++
			}
		}
		c.npig[a] = n
		for g, i := range gts {
			ann := &gt.anns[i]
			if ann.crowd || ann.area < rng.Min || ann.area > rng.Max {
				s.order[n] = g
				n++
			}
		}
		for o := range G {
			s.gtIg[o] = o >= c.npig[a]
		}
		for t, thr := range p.IoUThresholds {
			clear(s.gtm[:G])
			row := (a*T + t) * D
			for d := range D {
				best := min(thr, 1-1e-10)
				m := -1
				for o, g := range s.order[:G] {
					crowd := gt.anns[gts[g]].crowd
					if s.gtm[o] && !crowd {
						continue // already matched, and not a crowd region
					}
					if m > -1 && !s.gtIg[m] && s.gtIg[o] {
						break // matched a regular object; only ignored ones follow
					}
					if v := s.ious[d*G+g]; v >= best {
						best, m = v, o
					}
				}
				if m == -1 {
					continue
				}
				c.ignored[row+d] = s.gtIg[m]
				c.matched[row+d] = gt.anns[gts[s.order[m]]].id != 0
				s.gtm[m] = true
			}
			// An unmatched detection outside the area range is ignored.
			for d, j := range dts {
				if area := dt.list[j].area; !c.matched[row+d] && (area < rng.Min || area > rng.Max) {
					c.ignored[row+d] = true
				}
			}
		}
	}
	return c
}

// accumulate is pycocotools' accumulate for category k: per area range
// and maxDets, the detections of all images by descending score (stable),
// cumulative true and false positives per threshold, recall, and the
// precision envelope sampled at the recall thresholds.
func (ev *evaluator) accumulate(k int, s *scratch) {
	p, e := ev.p, ev.e
	T, R, A, M := len(p.IoUThresholds), len(p.RecallThresholds), len(p.AreaRanges), len(p.MaxDets)
	K := len(e.CategoryIDs)
	s.entries = s.entries[:0]
	for ci, c := range s.cells {
		for d, sc := range c.scores {
			s.entries = append(s.entries, entry{score: sc, cell: int32(ci), d: int32(d)})
		}
	}
	// Sorting once serves every maxDets: the detections kept under a
	// smaller budget are a subset whose stable order is the same.
	slices.SortStableFunc(s.entries, func(a, b entry) int { return cmp.Compare(b.score, a.score) })
	const eps = 2.220446049250313e-16 // np.spacing(1)
	for m, maxDet := range p.MaxDets {
		s.kept = s.kept[:0]
		for _, en := range s.entries {
			if int(en.d) < maxDet {
				s.kept = append(s.kept, en)
			}
		}
		nd := len(s.kept)
		s.rc = grow(s.rc, nd)
		s.pr = grow(s.pr, nd)
		for a := range A {
			npig := 0
			for _, c := range s.cells {
				npig += c.npig[a]
			}
			if npig == 0 {
				continue
			}
			for t := range T {
				var tp, fp float64
				for i, en := range s.kept {
					c := &s.cells[en.cell]
					at := (a*T+t)*len(c.scores) + int(en.d)
					if !c.ignored[at] {
						if c.matched[at] {
							tp++
						} else {
							fp++
						}
					}
					s.rc[i] = tp / float64(npig)
					s.pr[i] = tp / (fp + tp + eps)
				}
				rec := 0.0
				if nd > 0 {
					rec = s.rc[nd-1]
				}
				e.Recall[((t*K+k)*A+a)*M+m] = rec
				// Make precision monotone: each point gets the best
				// precision at any higher recall.
				for i := nd - 1; i > 0; i-- {
					if s.pr[i] > s.pr[i-1] {
						s.pr[i-1] = s.pr[i]
					}
				}
				rc := s.rc[:nd]
				for r, thr := range p.RecallThresholds {
					// numpy.searchsorted(rc, thr, side='left'); the first
					// threshold beyond the reached recall ends the row
					// (pycocotools' try/except), leaving zeros.
					pi, _ := slices.BinarySearch(rc, thr)
					at := (((t*R+r)*K+k)*A+a)*M + m
					if pi >= nd {
						for ; r < R; r++ {
							e.Precision[(((t*R+r)*K+k)*A+a)*M+m] = 0
						}
						break
					}
					e.Precision[at] = s.pr[pi]
				}
			}
		}
	}
}

func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

func growInt(b []int, n int) []int {
	if cap(b) < n {
		return make([]int, n)
	}
	return b[:n]
}

func growBool(b []bool, n int) []bool {
	if cap(b) < n {
		return make([]bool, n)
	}
	return b[:n]
}
