package eval

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"sort"
	"testing"
)

// bruteNearest is the reference: every pair's cosine similarity in
// float64, each row's others sorted by decreasing similarity, ties by
// lower index.
func bruteNearest(x []float32, dim int) [][]Neighbour64 {
	n := len(x) / dim
	norm := make([]float64, n)
	for i := range n {
		var s float64
		for _, v := range x[i*dim : (i+1)*dim] {
			s += float64(v) * float64(v)
		}
		norm[i] = math.Max(math.Sqrt(s), 1e-12)
	}
	out := make([][]Neighbour64, n)
	for i := range n {
		for j := range n {
			if j == i {
				continue
			}
			var dot float64
			for c := range dim {
				dot += float64(x[i*dim+c]) * float64(x[j*dim+c])
			}
			out[i] = append(out[i], Neighbour64{j, dot / norm[i] / norm[j]})
		}
		sort.SliceStable(out[i], func(a, b int) bool { return out[i][a].Similarity > out[i][b].Similarity })
	}
	return out
}

// Neighbour64 is a reference neighbour in float64.
type Neighbour64 struct {
	Index      int
	Similarity float64
}

// TestNearestAgainstBruteForce compares Nearest with the float64 brute
// force on random rows: at every rank the similarity agrees, each listed
// neighbour's true similarity is the one reported, and a row never lists
// itself; with any number of workers the result is the same.
func TestNearestAgainstBruteForce(t *testing.T) {
	const n, dim, k = 300, 24, 7
	x := randomFeatures(n, dim, 5, 3).X
	want := bruteNearest(x, dim)
	sim := func(i, j int) float64 {
		for _, nb := range want[i] {
			if nb.Index == j {
				return nb.Similarity
			}
		}
		return math.NaN() // j == i
	}
	var first [][]Neighbour
	for _, procs := range []int{1, 2, 3} {
		prev := runtime.GOMAXPROCS(procs)
		got, err := Nearest(x, dim, k)
		runtime.GOMAXPROCS(prev)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d rows, want %d", len(got), n)
		}
		for i, row := range got {
			if len(row) != k {
				t.Fatalf("row %d: %d neighbours, want %d", i, len(row), k)
			}
			for r, nb := range row {
				if nb.Index == i || slices.ContainsFunc(row[:r], func(o Neighbour) bool { return o.Index == nb.Index }) {
					t.Fatalf("row %d lists %d twice or itself: %v", i, nb.Index, row)
				}
				if d := math.Abs(float64(nb.Similarity) - want[i][r].Similarity); d > 1e-5 {
					t.Errorf("row %d rank %d: similarity %v, brute force %v", i, r, nb.Similarity, want[i][r].Similarity)
				}
				if d := math.Abs(float64(nb.Similarity) - sim(i, nb.Index)); d > 1e-5 {
					t.Errorf("row %d: neighbour %d reported at %v, its similarity is %v", i, nb.Index, nb.Similarity, sim(i, nb.Index))
				}
			}
		}
		if first == nil {
			first = got
		} else if !slices.EqualFunc(first, got, slices.Equal[[]Neighbour]) {
			t.Errorf("GOMAXPROCS %d gives other neighbours than GOMAXPROCS 1", procs)
		}
	}
}

// Duplicates tie exactly: the lower index wins, the row itself is left
// out even when a duplicate matches as well as it does, a zero row is
// similar to nothing (0 everywhere), and k is capped at n−1.
func TestNearestTiesAndEdges(t *testing.T) {
	x := []float32{
		1, 0, // 0
		2, 0, // 1: same direction as 0
		0, 1, // 2
		1, 0, // 3: duplicate of 0
		0, 0, // 4: zero
	}
	got, err := Nearest(x, 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	idx := func(row []Neighbour) []int {
		var out []int
		for _, nb := range row {
			out = append(out, nb.Index)
		}
		return out
	}
	want := [][]int{{1, 3, 2, 4}, {0, 3, 2, 4}, {0, 1, 3, 4}, {0, 1, 2, 4}, {0, 1, 2, 3}}
	for i := range want {
		if !slices.Equal(idx(got[i]), want[i]) {
			t.Errorf("row %d: neighbours %v, want %v", i, idx(got[i]), want[i])
		}
	}
	if got[0][0].Similarity != 1 || got[0][2].Similarity != 0 || got[4][0].Similarity != 0 {
		t.Errorf("similarities %v / %v", got[0], got[4])
	}
	one, err := Nearest([]float32{1, 2}, 2, 3)
	if err != nil || len(one) != 1 || len(one[0]) != 0 {
		t.Errorf("one row: %v, %v; want no neighbours", one, err)
	}
	for _, bad := range []struct {
		x      []float32
		dim, k int
	}{
		{[]float32{1, 2, 3}, 2, 1},
		{[]float32{1, 2}, 0, 1},
		{[]float32{1, 2}, 2, 0},
		{[]float32{1, float32(math.NaN())}, 2, 1},
		{nil, 2, 1},
	} {
		if _, err := Nearest(bad.x, bad.dim, bad.k); !errors.Is(err, ErrInput) {
			t.Errorf("Nearest(%v, %d, %d): err %v, want ErrInput", bad.x, bad.dim, bad.k, err)
		}
	}
}

// BenchmarkNearest measures the within-set search on 10,000 rows of
// dimension 512 (a ResNet-18 feature): 5.1·10¹⁰ multiply-adds per run.
func BenchmarkNearest(b *testing.B) {
	x := randomFeatures(10000, 512, 100, 1).X
	for b.Loop() {
		if _, err := Nearest(x, 512, 10); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(10000*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
