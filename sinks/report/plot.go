package report

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"strconv"

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
	p.X.Tick.Marker, p.Y.Tick.Marker = distinctTicks{}, distinctTicks{}
	return save(ctx, p, uri, 7*vg.Inch, 4*vg.Inch)
}

// distinctTicks are gonum's default ticks labelled with as many decimals
// as it takes for no two labels to read the same (a loss between 6.95 and
// 7.05 would otherwise show "7" twice).
type distinctTicks struct{}

func (distinctTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for d := 0; d <= 8; d++ {
		seen := map[string]bool{}
		ok := true
		for _, t := range ticks {
			if t.Label == "" {
				continue
			}
			l := strconv.FormatFloat(t.Value, 'f', d, 64)
			if seen[l] {
				ok = false
				break
			}
			seen[l] = true
		}
		if ok {
			for i := range ticks {
				if ticks[i].Label != "" {
					ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', d, 64)
				}
			}
			return ticks
		}
	}
	return ticks
}

// BarPlot writes a PNG of grouped bars: one group per label, one bar per
// series (e.g. groups = models, series = kNN / linear top-1), each bar
// with its value above it. The y axis leaves room above the tallest bar
// for the values and the legend, and the x axis half a group on each side
// so the outer labels are not cut.
func BarPlot(ctx context.Context, uri, title, yLabel string, labels []string, series []Series) error {
	p := plot.New()
	p.Title.Text, p.Y.Label.Text = title, yLabel
	p.Add(plotter.NewGrid())
	w := vg.Points(22)
	top := 0.0
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
		xy := plotter.XYLabels{XYs: make(plotter.XYs, len(s.Y)), Labels: make([]string, len(s.Y))}
		for j, v := range s.Y {
			xy.XYs[j].X, xy.XYs[j].Y = float64(j), v
			xy.Labels[j] = strconv.FormatFloat(v, 'f', 1, 64)
			top = max(top, v)
		}
		values, err := plotter.NewLabels(xy)
		if err != nil {
			return fmt.Errorf("plot %s: %w", uri, err)
		}
		for k := range values.TextStyle {
			values.TextStyle[k].Font.Size = vg.Points(8)
			values.TextStyle[k].XAlign = -0.5 // centred on the bar
		}
		values.Offset = vg.Point{X: bars.Offset, Y: vg.Points(2)}
		p.Add(values)
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.6, float64(len(labels))-0.4
	p.Y.Min, p.Y.Max = 0, top*1.25+1
	return save(ctx, p, uri, vg.Length(2.5+1.8*float64(len(labels)))*vg.Inch, 4.5*vg.Inch)
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
