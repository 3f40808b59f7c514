package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// A device check writes one JSON object per line: its phases
// (bench/gpucheck) and PyTorch's side (bench/gpu_torch.py) alike; Table
// reads them back. Every record has a "phase".

// Num is a float64 that survives JSON when not finite (null for ±Inf and
// NaN, read back as +Inf: a failed comparison).
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(n), 0) || math.IsNaN(float64(n)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.Inf(1))
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

// InfoRecord describes the device (phase "info").
type InfoRecord struct {
	Phase   string         `json:"phase"`
	Device  string         `json:"device"`
	Details map[string]any `json:"details"`
}

// OpRecord is one op case's result (phase "op").
type OpRecord struct {
	Phase   string `json:"phase"`
	Variant string `json:"variant"`
	Case    string `json:"case"`
	Worst   Num    `json:"worst"`
	Where   string `json:"where"`
	Tol     Num    `json:"tol"`
	Pass    bool   `json:"pass"`
	Err     string `json:"error,omitempty"`
}

// NewOpRecord turns a result into its record.
func NewOpRecord(variant string, r OpResult, tol float64) OpRecord {
	return OpRecord{Phase: "op", Variant: variant, Case: r.Case, Worst: Num(r.Worst), Where: r.Where, Tol: Num(tol),
		Pass: r.Err == "" && r.Worst <= tol, Err: r.Err}
}

// BackboneRecord is one backbone case's result (phase "backbone").
type BackboneRecord struct {
	Phase     string  `json:"phase"`
	Variant   string  `json:"variant"`
	Case      string  `json:"case"`
	Output    Num     `json:"output"`
	InputGrad Num     `json:"input_grad"`
	Grad      Num     `json:"grad"`
	GradParam string  `json:"grad_param"`
	Stats     Num     `json:"stats"`
	Tol       Num     `json:"tol"`
	GradTol   Num     `json:"grad_tol"`
	Pass      bool    `json:"pass"`
	Seconds   float64 `json:"seconds"`
	Err       string  `json:"error,omitempty"`
}

// NewBackboneRecord turns a result into its record.
func NewBackboneRecord(variant string, r BackboneResult, tol float64) BackboneRecord {
	gt := tol
	if r.GradTol > 0 {
		gt = r.GradTol
	}
	return BackboneRecord{Phase: "backbone", Variant: variant, Case: r.Case, Output: Num(r.Output), InputGrad: Num(r.InputGrad),
		Grad: Num(r.Grad), GradParam: r.GradParam, Stats: Num(r.Stats), Tol: Num(tol), GradTol: Num(gt), Pass: r.Pass(tol),
		Seconds: r.Seconds, Err: r.Err}
}

// BenchRecord is one throughput measurement (phase "bench"), on Side
// "sslight" or "pytorch".
type BenchRecord struct {
	Phase        string  `json:"phase"`
	Side         string  `json:"side"`
	Arch         string  `json:"arch"`
	Size         int     `json:"size"`
	Batch        int     `json:"batch"`
	Mode         string  `json:"mode"`
	Steps        int     `json:"steps"`
	ImagesPerSec float64 `json:"images_per_s"`
	PeakMiB      float64 `json:"peak_mib"`
	ReservedMiB  float64 `json:"reserved_mib"`
	Err          string  `json:"error,omitempty"`
}

// Key identifies the configuration.
func (b BenchRecord) Key() string {
	return fmt.Sprintf("%s %d b%d %s", b.Arch, b.Size, b.Batch, b.Mode)
}

// NewBenchRecord turns a result into its record.
func NewBenchRecord(r BenchResult) BenchRecord {
	return BenchRecord{Phase: "bench", Side: "sslight", Arch: r.Arch, Size: r.Size, Batch: r.Batch, Mode: r.Mode(), Steps: r.Steps,
		ImagesPerSec: r.ImagesPerSec, PeakMiB: r.PeakMiB, ReservedMiB: r.ReservedMiB, Err: r.Err}
}

// ErrorRecord is a phase that failed as a whole (phase "error").
type ErrorRecord struct {
	Phase string `json:"phase"`
	Stage string `json:"stage"`
	Err   string `json:"error"`
}

// Results are a device check's records, by kind.
type Results struct {
	Info      []InfoRecord
	Ops       []OpRecord
	Backbones []BackboneRecord
	Bench     []BenchRecord
	Errors    []ErrorRecord
	// Unreadable counts lines that were not records (a phase's stray
	// output, a line cut off by a timeout).
	Unreadable int
}

// ParseResults reads JSON lines; lines that do not parse or have an
// unknown phase are counted, not fatal.
func ParseResults(r io.Reader) (*Results, error) {
	res := &Results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var head struct {
			Phase string `json:"phase"`
		}
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &head) != nil {
			res.Unreadable++
			continue
		}
		var err error
		switch head.Phase {
		case "info":
			var v InfoRecord
			err = json.Unmarshal([]byte(line), &v)
			res.Info = append(res.Info, v)
		case "op":
			var v OpRecord
			err = json.Unmarshal([]byte(line), &v)
			res.Ops = append(res.Ops, v)
		case "backbone":
			var v BackboneRecord
			err = json.Unmarshal([]byte(line), &v)
			res.Backbones = append(res.Backbones, v)
		case "bench":
			var v BenchRecord
			err = json.Unmarshal([]byte(line), &v)
			res.Bench = append(res.Bench, v)
		case "error":
			var v ErrorRecord
			err = json.Unmarshal([]byte(line), &v)
			res.Errors = append(res.Errors, v)
		default:
			res.Unreadable++
		}
		if err != nil {
			return nil, fmt.Errorf("check: %q: %w", line, err)
		}
	}
	return res, sc.Err()
}

func fmtNum(n Num) string {
	if math.IsInf(float64(n), 0) {
		return "inf"
	}
	return fmt.Sprintf("%.2g", float64(n))
}

// Table writes the check's summary: the device, the failed ops and every
// backbone case, the phases that failed, then the parity counts by
// variant, the throughput side by side and the verdict: the last lines are
// what a caller who sees only the tail needs.
func (res *Results) Table(w io.Writer) {
	for _, in := range res.Info {
		fmt.Fprintf(w, "device: %s\n", in.Device)
		keys := make([]string, 0, len(in.Details))
		for k := range in.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, in.Details[k]))
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(parts, " "))
	}
	failures := 0
	var summary []string // printed after the details, just above the throughput
	variants := func(names []string) []string {
		seen := map[string]bool{}
		var out []string
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		return out
	}
	var opVariants []string
	for _, o := range res.Ops {
		opVariants = append(opVariants, o.Variant)
	}
	for _, v := range variants(opVariants) {
		pass, total, worst, where := 0, 0, Num(0), ""
		for _, o := range res.Ops {
			if o.Variant != v {
				continue
			}
			total++
			if o.Pass {
				pass++
			} else {
				failures++
				fmt.Fprintf(w, "  FAIL op %s [%s]: %s at %s (tol %s) %s\n", o.Case, v, fmtNum(o.Worst), o.Where, fmtNum(o.Tol), o.Err)
			}
			if o.Worst > worst {
				worst, where = o.Worst, o.Case
			}
		}
		summary = append(summary, fmt.Sprintf("ops [%s]: %d/%d within tolerance, worst %s (%s)", v, pass, total, fmtNum(worst), where))
	}
	var bbVariants []string
	for _, b := range res.Backbones {
		bbVariants = append(bbVariants, b.Variant)
	}
	for _, v := range variants(bbVariants) {
		pass, total := 0, 0
		for _, b := range res.Backbones {
			if b.Variant != v {
				continue
			}
			total++
			mark := "ok  "
			if b.Pass {
				pass++
			} else {
				failures++
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %-40s out %-7s dx %-7s grad %-7s stats %-7s %s %s\n", mark, b.Case, fmtNum(b.Output), fmtNum(b.InputGrad),
				fmtNum(b.Grad), fmtNum(b.Stats), b.GradParam, b.Err)
		}
		summary = append(summary, fmt.Sprintf("backbones [%s]: %d/%d within tolerance (vs the CPU trainer, relative to each tensor's scale)", v, pass, total))
	}
	seen := map[string]string{}
	for _, e := range res.Errors {
		failures++
		if first, ok := seen[e.Err]; ok {
			fmt.Fprintf(w, "phase %s failed: the same error as %s\n", e.Stage, first)
			continue
		}
		seen[e.Err] = e.Stage
		fmt.Fprintf(w, "phase %s failed: %s\n", e.Stage, clip(e.Err, 400))
	}
	if res.Unreadable > 0 {
		fmt.Fprintf(w, "(%d lines were not records)\n", res.Unreadable)
	}
	for _, l := range summary {
		fmt.Fprintln(w, l)
	}
	if len(res.Bench) > 0 {
		fmt.Fprintf(w, "%-28s %12s %12s %7s %22s\n", "throughput (images/s)", "sslight", "PyTorch", "ratio", "peak MiB sslight/torch")
		var keys []string
		by := map[string]map[string]BenchRecord{}
		for _, b := range res.Bench {
			k := b.Key()
			if by[k] == nil {
				by[k] = map[string]BenchRecord{}
				keys = append(keys, k)
			}
			by[k][b.Side] = b
		}
		cell := func(b BenchRecord, ok bool) string {
			switch {
			case !ok:
				return "-"
			case b.Err != "":
				return "error"
			}
			return fmt.Sprintf("%.0f", b.ImagesPerSec)
		}
		for _, k := range keys {
			s, sok := by[k]["sslight"]
			t, tok := by[k]["pytorch"]
			ratio, mem := "-", "-"
			if sok && tok && s.Err == "" && t.Err == "" && t.ImagesPerSec > 0 {
				ratio = fmt.Sprintf("%.2f", s.ImagesPerSec/t.ImagesPerSec)
			}
			if sok || tok {
				mem = fmt.Sprintf("%s/%s", memCell(s, sok), memCell(t, tok))
			}
			fmt.Fprintf(w, "%-28s %12s %12s %7s %22s\n", k, cell(s, sok), cell(t, tok), ratio, mem)
			for _, b := range []BenchRecord{s, t} {
				if b.Err != "" {
					fmt.Fprintf(w, "  %s %s: %s\n", b.Side, k, b.Err)
				}
			}
		}
	}
	if failures == 0 {
		fmt.Fprintln(w, "verdict: every parity check passed")
	} else {
		fmt.Fprintf(w, "verdict: %d parity checks or phases FAILED (see above)\n", failures)
	}
}

// clip shortens s to n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func memCell(b BenchRecord, ok bool) string {
	if !ok || b.Err != "" {
		return "-"
	}
	return fmt.Sprintf("%.0f", b.PeakMiB)
}
