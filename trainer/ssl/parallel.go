package ssl

import (
	"runtime"
	"sync"
)

// minRowWork is the number of row elements below which splitting rows over
// goroutines costs more than it saves.
const minRowWork = 1 << 15

// parallelRows calls fn on contiguous chunks [lo, hi) covering [0, n), one
// chunk per worker, and waits for all of them. worker numbers the chunk so
// fn can use per-worker scratch.
func parallelRows(n, workers int, fn func(lo, hi, worker int)) {
	if workers <= 1 || n < 2 {
		fn(0, n, 0)
		return
	}
	workers = min(workers, n)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi, w)
		}()
	}
	wg.Wait()
}

// rowScratch keeps one float64 row buffer per worker.
type rowScratch struct {
	rows [][]float64
}

// size returns the number of workers to use for rows of width d and makes
// sure each has a buffer of d values.
func (s *rowScratch) size(d int) int {
	w := runtime.GOMAXPROCS(0)
	if d*64 < minRowWork {
		w = 1
	}
	if len(s.rows) != w || len(s.rows[0]) != d {
		s.rows = make([][]float64, w)
		for i := range s.rows {
			s.rows[i] = make([]float64, d)
		}
	}
	return w
}

func (s *rowScratch) row(worker int) []float64 { return s.rows[worker] }
