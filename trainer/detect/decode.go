package detect

import (
	"cmp"
	"math"
	"slices"
)

// Detection is one decoded object, its box in input pixels.
type Detection struct {
	Class int
	Score float64
	Box   [4]float64 // x, y, width, height
}

// Decode turns one image's head outputs into at most topK detections,
// best first, as CenterNet's ctdet_decode: the heatmap's sigmoid is kept
// only at its peaks (elements equal to the maximum of their 3x3
// neighbourhood, the max-pool "NMS"), the topK peaks over all classes and
// cells are taken, and each peak (x, y) gives the box centred on
// (x + offset_x, y + offset_y) with the regressed width and height, all
// times stride. Boxes are clipped to the w·stride × h·stride input (a
// negative regressed size becomes an empty box) so every result is a
// valid COCO box.
//
// heat is [K, h, w] logits, reg is [4, h, w] (width, height, offset x,
// offset y in cells).
func Decode(heat, reg []float32, k, h, w int, stride float64, topK int) []Detection {
	if len(heat) != k*h*w || len(reg) != 4*h*w {
		panic("detect: Decode: heat or regression map does not have k·h·w / 4·h·w values")
	}
	type peak struct {
		i     int
		score float32
	}
	var peaks []peak
	for c := 0; c < k; c++ {
		plane := heat[c*h*w : (c+1)*h*w]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := plane[y*w+x]
				isMax := true
				for dy := -1; dy <= 1 && isMax; dy++ {
					for dx := -1; dx <= 1; dx++ {
						yy, xx := y+dy, x+dx
						if yy >= 0 && yy < h && xx >= 0 && xx < w && plane[yy*w+xx] > v {
							isMax = false
							break
						}
					}
				}
				if isMax {
					// The sigmoid is monotone: peaks of the logits are the
					// peaks of the scores.
					peaks = append(peaks, peak{c*h*w + y*w + x, v})
				}
			}
		}
	}
	// Best first; equal scores in class, row, column order.
	slices.SortStableFunc(peaks, func(a, b peak) int { return cmp.Compare(b.score, a.score) })
	peaks = peaks[:min(topK, len(peaks))]
	W, H := float64(w)*stride, float64(h)*stride
	out := make([]Detection, len(peaks))
	for j, p := range peaks {
		c, cell := p.i/(h*w), p.i%(h*w)
		x, y := cell%w, cell/w
		bw, bh := float64(reg[cell]), float64(reg[h*w+cell])
		cx, cy := float64(x)+float64(reg[2*h*w+cell]), float64(y)+float64(reg[3*h*w+cell])
		x0 := math.Min(math.Max((cx-bw/2)*stride, 0), W)
		y0 := math.Min(math.Max((cy-bh/2)*stride, 0), H)
		x1 := math.Min(math.Max((cx+bw/2)*stride, x0), W)
		y1 := math.Min(math.Max((cy+bh/2)*stride, y0), H)
		out[j] = Detection{Class: c, Score: 1 / (1 + math.Exp(-float64(p.score))), Box: [4]float64{x0, y0, x1 - x0, y1 - y0}}
	}
	return out
}
