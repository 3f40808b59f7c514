package eval

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// knnGolden is testdata/knn_golden.json, written by testdata/gen_knn.py
// from DINO's knn_classifier in torch 1.13.
type knnGolden struct {
	Cases []struct {
		Name    string    `json:"name"`
		Classes int       `json:"classes"`
		Dim     int       `json:"dim"`
		T       float64   `json:"T"`
		Ks      []int     `json:"ks"`
		TrainX  []float32 `json:"train_x"`
		TrainY  []int     `json:"train_y"`
		TestX   []float32 `json:"test_x"`
		TestY   []int     `json:"test_y"`
		Results []struct {
			K         int       `json:"k"`
			Top1      float64   `json:"top1"`
			Top5      *float64  `json:"top5"`
			Votes     []float64 `json:"votes"`
			Pred      []int     `json:"pred"`
			Hit5      []int     `json:"hit5"`
			Ambiguous []bool    `json:"ambiguous"`
		} `json:"results"`
	} `json:"cases"`
}

func loadKNNGolden(t *testing.T) knnGolden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "knn_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g knnGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("knn_golden.json: %v", err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("knn_golden.json has no cases")
	}
	return g
}

// TestKNNGolden compares every test sample's class votes, top-1 prediction
// and top-5 hit, and the accuracies, with DINO's knn_classifier. Samples
// the generator marked ambiguous (their outcome depends on how torch orders
// tied votes, which it leaves unspecified) are compared on votes only.
func TestKNNGolden(t *testing.T) {
	for _, c := range loadKNNGolden(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			train := Features{Dim: c.Dim, X: c.TrainX, Labels: c.TrainY}
			test := Features{Dim: c.Dim, X: c.TestX, Labels: c.TestY}
			got, err := KNN(train, test, c.Classes, c.Ks, c.T)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.Results) {
				t.Fatalf("%d results, want %d", len(got), len(c.Results))
			}
			kmax := 0
			for _, r := range c.Results {
				kmax = max(kmax, r.K)
			}
			nbs := allNeighbours(train, test, kmax)
			for j, want := range c.Results {
				g := got[j]
				if g.K != want.K {
					t.Errorf("result %d: K = %d, want %d", j, g.K, want.K)
				}
				votes := make([]float64, c.Classes)
				hits1, hits5, amb := 0, 0, 0
				for i, nb := range nbs {
					vote(nb, want.K, train.Labels, c.T, votes)
					for cl, v := range votes {
						w := want.Votes[i*c.Classes+cl]
						if math.Abs(v-w) > 1e-5*math.Max(1, math.Abs(w)) {
							t.Errorf("k=%d sample %d class %d: vote %g, want %g", want.K, i, cl, v, w)
						}
					}
					r := rankOf(votes, test.Labels[i])
					if r == 0 {
						hits1++
					}
					if r < min(5, want.K) {
						hits5++
					}
					if want.Ambiguous[i] {
						amb++
						continue
					}
					if p := slices.Index(votes, slices.Max(votes)); p != want.Pred[i] {
						t.Errorf("k=%d sample %d: predicted %d, want %d", want.K, i, p, want.Pred[i])
					}
					if want.Hit5 != nil && (r < min(5, want.K)) != (want.Hit5[i] == 1) {
						t.Errorf("k=%d sample %d: top-5 hit %v, want %v", want.K, i, r < min(5, want.K), want.Hit5[i] == 1)
					}
				}
				// KNN must agree with the per-sample outcome above, and with
				// DINO's accuracies up to the ambiguous samples.
				n := float64(test.Len())
				if g.Top1 != float64(hits1)*100/n {
					t.Errorf("k=%d: Top1 %v, per-sample count gives %v", want.K, g.Top1, float64(hits1)*100/n)
				}
				if math.Abs(g.Top1-want.Top1) > float64(amb)*100/n+1e-9 {
					t.Errorf("k=%d: Top1 %v, want %v (%d ambiguous samples)", want.K, g.Top1, want.Top1, amb)
				}
				if g.HasTop5 != (want.Top5 != nil) {
					t.Fatalf("k=%d: HasTop5 %v, want %v", want.K, g.HasTop5, want.Top5 != nil)
				}
				if want.Top5 == nil {
					continue
				}
				if g.Top5 != float64(hits5)*100/n {
					t.Errorf("k=%d: Top5 %v, per-sample count gives %v", want.K, g.Top5, float64(hits5)*100/n)
				}
				if math.Abs(g.Top5-*want.Top5) > float64(amb)*100/n+1e-9 {
					t.Errorf("k=%d: Top5 %v, want %v (%d ambiguous samples)", want.K, g.Top5, *want.Top5, amb)
				}
			}
		})
	}
}

// allNeighbours runs the parallel search and collects every test sample's
// neighbours in test order.
func allNeighbours(train, test Features, k int) []neighbours {
	out := make([]neighbours, test.Len())
	search(train, test, k, func() (func(int, neighbours), func()) {
		return func(i int, nb neighbours) {
			out[i] = neighbours{sim: slices.Clone(nb.sim), idx: slices.Clone(nb.idx)}
		}, func() {}
	})
	return out
}

// TestKNNHandComputed checks a case small enough to work out by hand.
// Train (2-D, labels): a=(1,0)→0, b=(0,2)→1, c=(3,3)→1, d=(-1,0)→2.
// Test x=(2,1), label 1: cosines with a, b, c, d are 2/√5 ≈ 0.894,
// 1/√5 ≈ 0.447, 9/(√5·√18) ≈ 0.949, −0.894. Ranked: c, a, b, d.
//
//	k=1: votes {1: e^(0.949/T)} → predicts 1: hit.
//	k=2: votes {1: e^(0.949/T), 0: e^(0.894/T)} → 1 still first: hit.
//	k=3 with T=1: {1: e^0.949+e^0.447 = 4.147, 0: e^0.894 = 2.446} → hit.
//
// Test y=(1,-0.1), label 2: cosines 0.995 (a), −0.0995 (b), 0.633 (c),
// −0.995 (d): ranked a, c, b, d; for k<4 class 2 gets no vote: miss; k=4
// with T=1: class 0 e^0.995=2.70, class 1 e^0.633+e^−0.0995=2.79, class 2
// e^−0.995=0.37: miss. So every k gives 50% top-1 (k=9 is capped to 4).
func TestKNNHandComputed(t *testing.T) {
	train := Features{Dim: 2, X: []float32{1, 0, 0, 2, 3, 3, -1, 0}, Labels: []int{0, 1, 1, 2}}
	test := Features{Dim: 2, X: []float32{2, 1, 1, -0.1}, Labels: []int{1, 2}}
	tests := []struct {
		ks   []int
		T    float64
		want []KNNResult
	}{
		{[]int{1, 2}, 0.07, []KNNResult{{K: 1, Top1: 50}, {K: 2, Top1: 50}}},
		{[]int{3, 4, 9}, 1, []KNNResult{{K: 3, Top1: 50}, {K: 4, Top1: 50}, {K: 4, Top1: 50}}},
	}
	for _, tt := range tests {
		got, err := KNN(train, test, 3, tt.ks, tt.T)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ks %v T %v: got %+v, want %+v", tt.ks, tt.T, got, tt.want)
		}
	}
}

// TestKNNTop5 checks top-5 on 6 classes: with k ≥ 5 a target among the five
// best-voted classes is a hit; with k < 5 only the first k count (DINO's
// min(5, k)).
func TestKNNTop5(t *testing.T) {
	// Train sample i (label i) sits at angle 0.1·i: similarity to the test
	// point at angle 0 falls with i, so classes rank 0, 1, …, 5.
	var x []float32
	for i := range 6 {
		a := 0.1 * float64(i)
		x = append(x, float32(math.Cos(a)), float32(math.Sin(a)))
	}
	train := Features{Dim: 2, X: x, Labels: []int{0, 1, 2, 3, 4, 5}}
	for _, tt := range []struct {
		label, k   int
		top1, top5 float64
	}{
		{0, 6, 100, 100},
		{4, 6, 0, 100}, // fifth-ranked
		{5, 6, 0, 0},   // sixth-ranked
		{2, 2, 0, 0},   // third-ranked, only min(5, 2) = 2 count
		{1, 2, 0, 100},
		{4, 3, 0, 0}, // no vote at all
	} {
		test := Features{Dim: 2, X: []float32{1, 0}, Labels: []int{tt.label}}
		got, err := KNN(train, test, 6, []int{tt.k}, 0.07)
		if err != nil {
			t.Fatal(err)
		}
		want := KNNResult{K: tt.k, Top1: tt.top1, Top5: tt.top5, HasTop5: true}
		if got[0] != want {
			t.Errorf("label %d k %d: got %+v, want %+v", tt.label, tt.k, got[0], want)
		}
	}
}

// TestKNNWorkersAgree runs a set larger than one chunk and one tile with 1
// and several workers: the split must not change anything.
func TestKNNWorkersAgree(t *testing.T) {
	train := randomFeatures(3*knnTile+17, 12, 9, 1)
	test := randomFeatures(3*knnChunk+5, 12, 9, 2)
	ks := []int{1, 10, 200}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	one, err := KNN(train, test, 9, ks, 0.07)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GOMAXPROCS(4)
	four, err := KNN(train, test, 9, ks, 0.07)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(one, four) {
		t.Errorf("1 worker %+v, 4 workers %+v", one, four)
	}
	// The brute-force reference: sort every similarity.
	nbs := allNeighbours(train, test, 200)
	for i := range test.Len() {
		type cand struct {
			s float32
			j int32
		}
		var all []cand
		q := test.Row(i)
		qi := invNorm(q)
		for j := range train.Len() {
			r := train.Row(j)
			var dot float64
			for d := range r {
				dot += float64(q[d]*qi) * float64(r[d])
			}
			all = append(all, cand{float32(dot) * invNorm(r), int32(j)})
		}
		slices.SortStableFunc(all, func(a, b cand) int {
			if a.s > b.s {
				return -1
			}
			if a.s < b.s {
				return 1
			}
			return 0
		})
		for n := range 200 {
			// float32 sums in another order: compare similarities loosely,
			// indices only where the neighbours are not nearly tied.
			if math.Abs(float64(all[n].s-nbs[i].sim[n])) > 1e-5 {
				t.Fatalf("test %d neighbour %d: similarity %v, brute force %v", i, n, nbs[i].sim[n], all[n].s)
			}
			tied := (n > 0 && all[n-1].s-all[n].s < 1e-5) || (n+1 < len(all) && all[n].s-all[n+1].s < 1e-5)
			if !tied && all[n].j != nbs[i].idx[n] {
				t.Fatalf("test %d neighbour %d: train %d, brute force %d", i, n, nbs[i].idx[n], all[n].j)
			}
		}
	}
}

func TestKNNTies(t *testing.T) {
	// Four train vectors of one direction (power-of-two scales, so their
	// similarities are exactly equal) with labels 3, 1, 2, 1: with k=2 the
	// lower indices (labels 3 and 1) are the neighbours; their votes tie and
	// the lower class (1) wins, and with k=3 classes 3, 1, 2 tie: 1 again.
	train := Features{Dim: 2, X: []float32{1, 1, 2, 2, 4, 4, 8, 8}, Labels: []int{3, 1, 2, 1}}
	test := Features{Dim: 2, X: []float32{1, 1, 0.5, 0.5}, Labels: []int{1, 3}}
	for _, k := range []int{2, 3} {
		got, err := KNN(train, test, 4, []int{k}, 0.07)
		if err != nil {
			t.Fatal(err)
		}
		if want := (KNNResult{K: k, Top1: 50}); got[0] != want {
			t.Errorf("k=%d: got %+v, want %+v", k, got[0], want)
		}
		for i, nb := range allNeighbours(train, test, k) {
			if want := []int32{0, 1, 2}[:k]; !slices.Equal(nb.idx, want) {
				t.Errorf("k=%d test %d: neighbours %v, want %v", k, i, nb.idx, want)
			}
		}
	}
}

func TestKNNErrors(t *testing.T) {
	good := Features{Dim: 2, X: []float32{1, 0, 0, 1}, Labels: []int{0, 1}}
	tests := []struct {
		name        string
		train, test Features
		classes     int
		ks          []int
		T           float64
	}{
		{"empty train", Features{Dim: 2}, good, 2, []int{1}, 0.07},
		{"empty test", good, Features{Dim: 2}, 2, []int{1}, 0.07},
		{"dim mismatch", good, Features{Dim: 1, X: []float32{1}, Labels: []int{0}}, 2, []int{1}, 0.07},
		{"short X", Features{Dim: 2, X: []float32{1, 0, 0}, Labels: []int{0, 1}}, good, 2, []int{1}, 0.07},
		{"zero dim", Features{Dim: 0, Labels: []int{0}}, good, 2, []int{1}, 0.07},
		{"label too large", good, Features{Dim: 2, X: []float32{1, 0}, Labels: []int{2}}, 2, []int{1}, 0.07},
		{"negative label", Features{Dim: 2, X: []float32{1, 0, 0, 1}, Labels: []int{0, -1}}, good, 2, []int{1}, 0.07},
		{"NaN", Features{Dim: 2, X: []float32{1, float32(math.NaN()), 0, 1}, Labels: []int{0, 1}}, good, 2, []int{1}, 0.07},
		{"no classes", good, good, 0, []int{1}, 0.07},
		{"no k", good, good, 2, nil, 0.07},
		{"zero k", good, good, 2, []int{10, 0}, 0.07},
		{"zero T", good, good, 2, []int{1}, 0},
		{"NaN T", good, good, 2, []int{1}, math.NaN()},
	}
	for _, tt := range tests {
		_, err := KNN(tt.train, tt.test, tt.classes, tt.ks, tt.T)
		if !errors.Is(err, ErrInput) {
			t.Errorf("%s: error %v, want ErrInput", tt.name, err)
		}
	}
}

// randomFeatures returns n clustered samples of dimension d over classes
// classes, deterministic in seed (a small LCG keeps the test free of
// math/rand's version-dependent streams).
func randomFeatures(n, d, classes int, seed uint64) Features {
	s := seed*0x9E3779B97F4A7C15 + 1
	next := func() float32 {
		s = s*6364136223846793005 + 1442695040888963407
		return float32(s>>40)/float32(1<<24)*2 - 1
	}
	f := Features{Dim: d, X: make([]float32, n*d), Labels: make([]int, n)}
	for i := range n {
		l := int(uint32(next()*1e6)) % classes
		f.Labels[i] = l
		for j := range d {
			c := float32(0)
			if j%classes == l {
				c = 1.5
			}
			f.X[i*d+j] = c + next()
		}
	}
	return f
}
