package nn

import "testing"

func TestScratchSizes(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 8, 9, 1000, 1 << 20} {
		b := getScratch(n)
		if len(b) != n || cap(b) < n || cap(b)&(cap(b)-1) != 0 {
			t.Errorf("getScratch(%d): len %d cap %d, want len %d and a power-of-two capacity", n, len(b), cap(b), n)
		}
		putScratch(b)
		if c := getScratch(n); len(c) != n {
			t.Errorf("getScratch(%d) after put: len %d", n, len(c))
		}
	}
	if getScratch(0) != nil {
		t.Error("getScratch(0) allocated")
	}
	putScratch(make([]float32, 3)) // foreign slice: ignored, must not panic
}

// TestReleaseScratchEmptiesPools: after ReleaseScratch a pooled size class
// hands out a new buffer, not the one put back.
func TestReleaseScratchEmptiesPools(t *testing.T) {
	b := getScratch(1000)
	b[0] = 42
	putScratch(b)
	ReleaseScratch()
	c := getScratch(1000)
	if &c[0] == &b[0] {
		t.Fatal("ReleaseScratch left the buffer in its pool")
	}
}
