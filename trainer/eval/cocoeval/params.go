package cocoeval

import (
	"fmt"
	"slices"
)

// IoUType says what detections are overlapped with ground truth by.
type IoUType string

// The IoU types COCO evaluates for detection.
const (
	IoUBBox IoUType = "bbox" // boxes [x, y, width, height]
	IoUSegm IoUType = "segm" // instance masks (polygons or RLE)
)

// ParseIoUType accepts "bbox" and "segm".
func ParseIoUType(s string) (IoUType, error) {
	switch t := IoUType(s); t {
	case IoUBBox, IoUSegm:
		return t, nil
	}
	return "", fmt.Errorf("unknown iou type %q (want bbox or segm)", s)
}

// AreaRange is an object-size bucket: objects whose area lies in
// [Min, Max] (both ends included, as in pycocotools) count in it.
type AreaRange struct {
	Label    string
	Min, Max float64
}

// Params are COCOeval's evaluation parameters (pycocotools' Params for
// detection; useCats is always on).
type Params struct {
	IoUType IoUType
	// IoUThresholds are the match thresholds (T of them).
	IoUThresholds []float64
	// RecallThresholds are the recall points precision is sampled at (R).
	RecallThresholds []float64
	// MaxDets are the detection budgets per image, ascending (M); the last
	// one also caps the detections looked at per image and category.
	MaxDets []int
	// AreaRanges are the object-size buckets (A).
	AreaRanges []AreaRange
}

// DefaultParams returns pycocotools' defaults: IoU 0.50:0.05:0.95, 101
// recall points 0:0.01:1, maxDets 1/10/100 and the areas all, small
// (< 32²), medium (32² to 96²) and large.
func DefaultParams(t IoUType) Params {
	return Params{
		IoUType:          t,
		IoUThresholds:    linspace(.5, .95, 10),
		RecallThresholds: linspace(0, 1, 101),
		MaxDets:          []int{1, 10, 100},
		AreaRanges: []AreaRange{
			{"all", 0, 1e5 * 1e5},
			{"small", 0, 32 * 32},
			{"medium", 32 * 32, 96 * 96},
			{"large", 96 * 96, 1e5 * 1e5},
		},
	}
}

// linspace is numpy.linspace with its endpoint: start + i·step with
// step = (stop−start)/(n−1), and the last value exactly stop. The
// thresholds must be numpy's doubles bit for bit, because recall values
// are compared with them.
func linspace(start, stop float64, n int) []float64 {
	out := make([]float64, n)
	if n == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(n-1)
	for i := range out {
		out[i] = float64(float64(i)*step) + start
	}
	out[n-1] = stop
	return out
}

// validate checks the parameters are usable.
func (p Params) validate() error {
	if _, err := ParseIoUType(string(p.IoUType)); err != nil {
		return err
	}
	if len(p.IoUThresholds) == 0 || len(p.RecallThresholds) == 0 || len(p.MaxDets) == 0 || len(p.AreaRanges) == 0 {
		return fmt.Errorf("evaluation parameters need IoU thresholds, recall thresholds, maxDets and area ranges")
	}
	if !slices.IsSorted(p.MaxDets) || p.MaxDets[0] < 1 {
		return fmt.Errorf("maxDets %v must be positive and ascending", p.MaxDets)
	}
	return nil
}
