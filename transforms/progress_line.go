package transforms

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sslight-go/sslight/sinks/storage"
)

// StartProgress prints a self-overwriting progress line on w every second,
// reading Progress (which it resets), until the returned stop is called.
// label names the job ("prepare", "evaluate: features") and unit what is
// counted ("images·epochs"). Only in-process runners (Prism, direct) move
// the counter. While operations of this process wait on object storage
// (retrying), the line says so (StorageNote).
func StartProgress(w io.Writer, label, unit string, total int, start time.Time) (stop func()) {
	Progress.Store(0)
	if w == nil || total <= 0 {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	line := func() string {
		return ProgressLine(label, unit, int(Progress.Load()), total, time.Since(start)) + StorageNote(storage.Retrying())
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(w, "\r%s\n", line())
				return
			case <-t.C:
				fmt.Fprintf(w, "\r%s", line())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// ProgressLine renders "<label> [====    ] done/total unit  rate/s  elapsed  ETA".
func ProgressLine(label, unit string, done, total int, el time.Duration) string {
	const width = 30
	frac := min(float64(done)/float64(total), 1)
	bar := strings.Repeat("=", int(frac*width)) + strings.Repeat(" ", width-int(frac*width))
	rate := float64(done) / el.Seconds()
	eta := "?"
	switch {
	case done >= total:
		eta = "0s"
	case rate > 0:
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%s [%s] %d/%d %s  %.1f/s  elapsed %s  ETA %s ", label, bar, done, total, unit, rate, el.Round(time.Second), eta)
}

// StorageNote renders "waiting on storage: N retrying (last: …)" while st
// shows operations retrying, and "" otherwise. The last error is cut to
// keep the line on one screen row.
func StorageNote(st storage.RetryStatus) string {
	if st.Waiting <= 0 {
		return ""
	}
	const maxLast = 80
	last := strings.Join(strings.Fields(st.LastError), " ")
	if r := []rune(last); len(r) > maxLast {
		last = string(r[:maxLast-1]) + "…"
	}
	return fmt.Sprintf(" waiting on storage: %d retrying (last: %s) ", st.Waiting, last)
}

// RunnerName is the Beam --runner flag's value, "prism" when unset.
func RunnerName() string {
	if f := flag.Lookup("runner"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return "prism"
}
