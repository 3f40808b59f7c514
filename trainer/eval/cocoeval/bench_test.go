package cocoeval

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sslight-go/sslight/sinks/coco"
)

// syntheticScene builds a COCO-sized validation scene: 1000 images of
// 640×480, 20 categories, 5 objects per image (5000) of all sizes as
// octagon polygons, and 4 detections per object (20000) jittered around it
// with random scores, some with the wrong category.
func syntheticScene(tb testing.TB) (*coco.Dataset, []coco.Result) {
	rng := rand.New(rand.NewPCG(7, 11))
	const nImages, perImage, perObject, nCats, W, H = 1000, 5, 4, 20, 640, 480
	d := &coco.Dataset{}
	for c := range nCats {
		d.Categories = append(d.Categories, coco.Category{ID: int64(3*c + 1), Name: fmt.Sprintf("c%d", c)})
	}
	octagon := func(cx, cy, r float64) []float64 {
		p := make([]float64, 0, 16)
		for i := range 8 {
			a := float64(i) * math.Pi / 4
			p = append(p, cx+r*math.Cos(a), cy+r*math.Sin(a))
		}
		return p
	}
	var res []coco.Result
	for i := range nImages {
		id := int64(1000 + i)
		d.Images = append(d.Images, coco.Image{ID: id, Width: W, Height: H, FileName: fmt.Sprintf("%d.jpg", id)})
		for range perImage {
			r := []float64{6, 12, 25, 50, 100}[rng.IntN(5)] * (0.7 + 0.6*rng.Float64())
			cx, cy := r+rng.Float64()*(W-2*r), r+rng.Float64()*(H-2*r)
			cat := d.Categories[rng.IntN(nCats)].ID
			poly := octagon(cx, cy, r)
			box := coco.BBox{cx - r, cy - r, 2 * r, 2 * r}
			d.Annotations = append(d.Annotations, coco.Annotation{ID: int64(len(d.Annotations) + 1), ImageID: id, CategoryID: cat,
				BBox: box, Area: 2 * math.Sqrt2 * r * r, IsCrowd: btoi(rng.IntN(50) == 0), Segmentation: &coco.Segmentation{Polygons: [][]float64{poly}}})
			for range perObject {
				j := r * 0.3 * rng.Float64()
				dx, dy, dr := j*(2*rng.Float64()-1), j*(2*rng.Float64()-1), j*(2*rng.Float64()-1)
				dcat := cat
				if rng.IntN(5) == 0 {
					dcat = d.Categories[rng.IntN(nCats)].ID
				}
				b := coco.BBox{cx + dx - r - dr, cy + dy - r - dr, 2 * (r + dr), 2 * (r + dr)}
				res = append(res, coco.Result{ImageID: id, CategoryID: dcat, Score: rng.Float64(), BBox: &b,
					Segmentation: &coco.Segmentation{Polygons: [][]float64{octagon(cx+dx, cy+dy, r+dr)}}})
			}
		}
	}
	return d, res
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkEvaluate measures Evaluate (evaluate + accumulate + summarize)
// on the synthetic scene; loading and rasterising are done before the
// timer.
func BenchmarkEvaluate(b *testing.B) {
	d, res := syntheticScene(b)
	for _, typ := range []IoUType{IoUBBox, IoUSegm} {
		b.Run(string(typ), func(b *testing.B) {
			gt, err := NewGroundTruth(d, "synthetic")
			if err != nil {
				b.Fatal(err)
			}
			dt, err := LoadResults(res, "synthetic", gt, typ)
			if err != nil {
				b.Fatal(err)
			}
			p := DefaultParams(typ)
			if _, err := Evaluate(context.Background(), gt, dt, p); err != nil { // rasterises gt masks once
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := Evaluate(context.Background(), gt, dt, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoadResults measures loading the 20000 results for segm
// evaluation (rasterising their polygons), the other large cost of a run.
func BenchmarkLoadResults(b *testing.B) {
	d, res := syntheticScene(b)
	gt, err := NewGroundTruth(d, "synthetic")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadResults(res, "synthetic", gt, IoUSegm); err != nil {
			b.Fatal(err)
		}
	}
}
