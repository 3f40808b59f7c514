package transforms

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/sslight-go/sslight/transforms/source"
)

// ApplyItems writes the evaluation views of items into dst (row-major
// [len(items), 3, Size, Size]), reading and decoding on every CPU. Unlike
// the feature pipeline, which dead-letters bad images, an item that cannot
// be used is an error here, naming the item and the stage; it is the first
// bad item in listing order, whatever the number of CPUs.
func (v EvalView) ApplyItems(ctx context.Context, items []source.Item, dst []float32) error {
	if err := v.Validate(); err != nil {
		return err
	}
	n := 3 * v.Size * v.Size
	if len(dst) < len(items)*n {
		return fmt.Errorf("evaluation views: %d values for %d views of %d", len(dst), len(items), n)
	}
	return forEachItem(items, func(i int, sc *EvalScratch) error {
		if stage, err := v.ApplyItem(ctx, items[i], dst[i*n:(i+1)*n], sc); err != nil {
			return fmt.Errorf("%s: %s: %w", itemURI(items[i]), stage, err)
		}
		return nil
	})
}

// ApplyItems writes the training views of items for epoch into dst
// (row-major [len(items), 3, Size, Size]) as EvalView.ApplyItems does:
// on every CPU, the first bad item in listing order an error.
func (v LinearTrainView) ApplyItems(ctx context.Context, items []source.Item, epoch int, dst []float32) error {
	n := 3 * v.Size * v.Size
	if len(dst) < len(items)*n {
		return fmt.Errorf("linear train views: %d values for %d views of %d", len(dst), len(items), n)
	}
	return forEachItem(items, func(i int, sc *EvalScratch) error {
		if stage, err := v.ApplyItem(ctx, items[i], epoch, dst[i*n:(i+1)*n], sc); err != nil {
			return fmt.Errorf("%s: %s: %w", itemURI(items[i]), stage, err)
		}
		return nil
	})
}

// forEachItem calls f for every index of items on GOMAXPROCS goroutines,
// each with its own scratch. Worker w takes indices w, w+W, w+2W, … in
// order and stops at its first error, so the lowest failing index is
// always reached: that error is returned.
func forEachItem(items []source.Item, f func(i int, sc *EvalScratch) error) error {
	workers := min(runtime.GOMAXPROCS(0), len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc EvalScratch
			for i := w; i < len(items); i += workers {
				if errs[i] = f(i, &sc); errs[i] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
