package cocoeval

// summarize computes summarize()'s 12 statistics. Each is the mean of the
// defined (> −1) entries of a slice of Precision or Recall, taken in
// numpy's C order and summed in numpy's grouping, so the means agree with
// pycocotools to the last bit.
func (e *Eval) summarize() []float64 {
	maxAt := func(i int) int {
		if i < len(e.Params.MaxDets) {
			return e.Params.MaxDets[i]
		}
		return -1 // no such budget: the statistic is undefined (−1)
	}
	last := maxAt(2)
	return []float64{
		e.summary(true, nil, "all", last),
		e.summary(true, ptr(.5), "all", last),
		e.summary(true, ptr(.75), "all", last),
		e.summary(true, nil, "small", last),
		e.summary(true, nil, "medium", last),
		e.summary(true, nil, "large", last),
		e.summary(false, nil, "all", maxAt(0)),
		e.summary(false, nil, "all", maxAt(1)),
		e.summary(false, nil, "all", last),
		e.summary(false, nil, "small", last),
		e.summary(false, nil, "medium", last),
		e.summary(false, nil, "large", last),
	}
}

func ptr(v float64) *float64 { return &v }

// summary is pycocotools' _summarize: the mean over IoU thresholds (all,
// or those equal to iouThr), recall points and categories of the entries
// for the area range labelled area and the budget maxDet, or −1 when none
// is defined.
func (e *Eval) summary(ap bool, iouThr *float64, area string, maxDet int) float64 {
	p := e.Params
	var ts, as, ms []int
	for t, v := range p.IoUThresholds {
		if iouThr == nil || *iouThr == v {
			ts = append(ts, t)
		}
	}
	for a, r := range p.AreaRanges {
		if r.Label == area {
			as = append(as, a)
		}
	}
	for m, v := range p.MaxDets {
		if v == maxDet {
			ms = append(ms, m)
		}
	}
	var vals []float64
	keep := func(v float64) {
		if v > -1 {
			vals = append(vals, v)
		}
	}
	K := len(e.CategoryIDs)
	for _, t := range ts {
		if ap {
			for r := range p.RecallThresholds {
				for k := range K {
					for _, a := range as {
						for _, m := range ms {
							keep(e.PrecisionAt(t, r, k, a, m))
						}
					}
				}
			}
		} else {
			for k := range K {
				for _, a := range as {
					for _, m := range ms {
						keep(e.RecallAt(t, k, a, m))
					}
				}
			}
		}
	}
	return mean(vals)
}

// CategoryAP returns category k's AP over all IoU thresholds and recall
// points for the area range "all" at the largest budget (the per-category
// AP detectron2 reports), or −1 when the category has no ground truth.
func (e *Eval) CategoryAP(k int) float64 {
	p := e.Params
	a := -1
	for i, r := range p.AreaRanges {
		if r.Label == "all" {
			a = i
			break
		}
	}
	if a < 0 {
		return -1
	}
	m := len(p.MaxDets) - 1
	var vals []float64
	for t := range p.IoUThresholds {
		for r := range p.RecallThresholds {
			if v := e.PrecisionAt(t, r, k, a, m); v > -1 {
				vals = append(vals, v)
			}
		}
	}
	return mean(vals)
}

// mean is numpy.mean of a 1-d float64 array, or −1 for an empty one (the
// value pycocotools reports when nothing is defined).
func mean(v []float64) float64 {
	if len(v) == 0 {
		return -1
	}
	return numpySum(v) / float64(len(v))
}

// numpyBufSize is numpy's default ufunc buffer size (np.getbufsize()):
// add.reduce hands the array to its inner loop in pieces this long.
const numpyBufSize = 8192

// numpySum adds like numpy's float64 add.reduce over a 1-d array: the
// identity 0, plus the pairwise sum of each 8192-element piece in turn.
func numpySum(v []float64) float64 {
	s := 0.0
	for len(v) > 0 {
		n := min(len(v), numpyBufSize)
		s += pairwiseSum(v[:n])
		v = v[n:]
	}
	return s
}

// pairwiseSum adds like numpy's float64 add.reduce: eight running sums
// over blocks of up to 128 values, halving larger arrays at multiples of
// eight. The grouping changes the rounding, which is why it is copied.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		s := 0.
		for _, v := range a {
			s += v
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range 8 {
				r[j] += a[i+j]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += a[i]
		}
		return s
	}
	n2 := n / 2
	n2 -= n2 % 8
	return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
}
