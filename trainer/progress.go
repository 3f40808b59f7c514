package trainer

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress prints one self-overwriting line (bar, epoch, loss, lr,
// images/s, ETA) at most once a second.
type progress struct {
	w                io.Writer
	total, startStep int
	start, last      time.Time
	printed          bool
}

func newProgress(w io.Writer, total, startStep int) *progress {
	now := time.Now()
	return &progress{w: w, total: total, startStep: startStep, start: now}
}

func (p *progress) update(step, epoch, epochs int, loss, lr float64, batch int) {
	if p.w == nil {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < time.Second && step != p.total {
		return
	}
	p.last = now
	el := now.Sub(p.start)
	done := step - p.startStep
	rate := float64(done) / el.Seconds()
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-step)/rate) * time.Second).Round(time.Second).String()
	}
	const width = 24
	fill := width * step / max(1, p.total)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	fmt.Fprintf(p.w, "\rpretrain [%s] step %d/%d  epoch %d/%d  loss %.4f  lr %.4g  %.0f img/s  elapsed %s  ETA %s ",
		bar, step, p.total, epoch+1, epochs, loss, lr, rate*float64(batch), el.Round(time.Second), eta)
	p.printed = true
}

func (p *progress) done() {
	if p.w != nil && p.printed {
		fmt.Fprintln(p.w)
	}
}
