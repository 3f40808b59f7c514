package report

import (
	"bytes"
	"context"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/sslight-go/sslight/sinks/storage"
)

// Series is one named curve.
type Series struct {
	Name string
	X, Y []float64
}

// LinePlot writes a PNG of the curves to uri.
func LinePlot(ctx context.Context, uri, title, xLabel, yLabel string, series []Series) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xLabel, yLabel
	p.Add(plotter.NewGrid())
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot %s: series %s has %d x and %d y values", uri, s.Name, len(s.X), len(s.Y))
		}
		pts := make(plotter.XYs, len(s.X))
		for j := range s.X {
			pts[j].X, pts[j].Y = s.X[j], s.Y[j]
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", uri, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.Name, l)
	}
	p.Legend.Top = true
	return save(ctx, p, uri, 7*vg.Inch, 4*vg.Inch)
}

// BarPlot writes a PNG of grouped bars: one group per label, one bar per
// series (e.g. groups = models, series = kNN / linear top-1).
func BarPlot(ctx context.Context, uri, title, yLabel string, labels []string, series []Series) error {
	p := plot.New()
	p.Title.Text, p.Y.Label.Text = title, yLabel
	p.Add(plotter.NewGrid())
	w := vg.Points(18)
	for i, s := range series {
		if len(s.Y) != len(labels) {
			return fmt.Errorf("plot %s: series %s has %d values for %d labels", uri, s.Name, len(s.Y), len(labels))
		}
		bars, err := plotter.NewBarChart(plotter.Values(s.Y), w)
		if err != nil {
			return fmt.Errorf("plot %s: %w", uri, err)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Color = color.Transparent
		bars.Offset = vg.Length(float64(i)-float64(len(series)-1)/2) * w
		p.Add(bars)
		p.Legend.Add(s.Name, bars)
	}
	p.Legend.Top = true
	p.NominalX(labels...)
	return save(ctx, p, uri, vg.Length(2+1.6*float64(len(labels)))*vg.Inch, 4*vg.Inch)
}

func save(ctx context.Context, p *plot.Plot, uri string, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", uri, err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return fmt.Errorf("plot %s: %w", uri, err)
	}
	return storage.WriteFile(ctx, uri, b.Bytes())
}
