// Package report writes evaluation results where dashboards and people
// read them: metrics.json (every number with its checkpoint, config hash,
// data set, protocol settings and wall time), metrics.csv (one row per
// model × metric), report.md (a table shaped like the paper's, with
// SSLight-minus-baseline deltas) and PNG plots.
package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/storage"
)

// Settings of a row: how the model was obtained.
const (
	SettingBaseline   = "baseline"
	SettingSSLight    = "sslight"
	SettingRandomInit = "random-init"
	SettingRawPixels  = "raw-pixels"
)

// Metric names used as Row.Metrics keys and table columns, in table order.
var Columns = []Column{
	{"knn_top1", "kNN top-1"}, {"knn_top5", "kNN top-5"},
	{"linear_top1", "linear top-1"}, {"linear_top5", "linear top-5"},
	{"semi1_top1", "1% top-1"}, {"semi10_top1", "10% top-1"},
	{"ap", "AP"}, {"ap50", "AP50"}, {"ap75", "AP75"},
}

// Column is one metric of the table.
type Column struct{ Key, Title string }

// Row is one evaluated model.
type Row struct {
	// Name is what the table prints ("DINO + SSLight").
	Name string `json:"name"`
	// Method (DINO, SwAV, MoCo) is empty for the reference rows (raw
	// pixels, random init); Setting is one of the Setting constants.
	Method  string `json:"method,omitempty"`
	Setting string `json:"setting"`
	Arch    string `json:"arch,omitempty"`
	// Backbone spells the architecture with its options ("resnet18 ×0.25,
	// small-image stem"), as the table prints it.
	Backbone string `json:"backbone,omitempty"`
	// Pretraining is how the row's checkpoint was trained (nil for the
	// reference rows).
	Pretraining *Pretraining `json:"pretraining,omitempty"`
	// Seed is a random-init row's initialisation seed.
	Seed int `json:"seed,omitempty"`
	// Checkpoint is the evaluated checkpoint folder ("" for the
	// reference rows) and ConfigHash its training config's hash.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Weights says which of the checkpoint's networks was evaluated:
	// "student" (the trained network) or "teacher" (DINO's EMA teacher,
	// MoCo's key encoder); "" for the reference rows.
	Weights    string `json:"weights,omitempty"`
	ConfigHash string `json:"config_hash,omitempty"`
	Dataset    string `json:"dataset"`
	// Metrics maps a Columns key to a value (percent or AP×100).
	Metrics map[string]float64 `json:"metrics"`
	// Protocols describes how each metric group was computed (k, T,
	// epochs, mode, subset, …), keyed by protocol name.
	Protocols map[string]string `json:"protocols,omitempty"`
	// Seconds is the wall time of each protocol, keyed by protocol name.
	Seconds map[string]float64 `json:"seconds,omitempty"`
	// Training describes the pre-training (epochs, images/s, wall time).
	Training map[string]float64 `json:"training,omitempty"`
}

// Report is one evaluation run.
type Report struct {
	RunID   string `json:"run_id"`
	Created string `json:"created"` // RFC 3339, UTC
	Dataset string `json:"dataset"`
	Rows    []Row  `json:"rows"`
	// Notes are printed under the table (what a number came from).
	Notes []string `json:"notes,omitempty"`
	// Setup says how the report was made (nil: not recorded).
	Setup *Setup `json:"setup,omitempty"`
}

// Write writes metrics.json, metrics.csv and report.md under dir.
func Write(ctx context.Context, dir string, r *Report) error {
	if err := jsonfile.Write(ctx, storage.Join(dir, "metrics.json"), r); err != nil {
		return err
	}
	if err := storage.WriteFile(ctx, storage.Join(dir, "metrics.csv"), CSV(r)); err != nil {
		return err
	}
	return storage.WriteFile(ctx, storage.Join(dir, "report.md"), []byte(Markdown(r)))
}

// CSV is one line per (row, metric): name, setting, method, arch, dataset,
// metric, value, checkpoint, config_hash.
func CSV(r *Report) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"name", "setting", "method", "arch", "dataset", "metric", "value", "checkpoint", "config_hash"})
	for _, row := range r.Rows {
		keys := make([]string, 0, len(row.Metrics))
		for k := range row.Metrics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			_ = w.Write([]string{row.Name, row.Setting, row.Method, row.Arch, row.Dataset, k,
				strconv.FormatFloat(row.Metrics[k], 'f', -1, 64), row.Checkpoint, row.ConfigHash})
		}
	}
	w.Flush()
	return b.Bytes()
}

// baselineOf returns the index of the baseline row an SSLight row is
// compared with (same method, architecture and weights), or -1.
func baselineOf(rows []Row, i int) int {
	if rows[i].Setting != SettingSSLight {
		return -1
	}
	for j, o := range rows {
		if o.Setting == SettingBaseline && o.Method == rows[i].Method && o.Arch == rows[i].Arch && o.Weights == rows[i].Weights {
			return j
		}
	}
	return -1
}

// Markdown renders the paper-style table: one row per model, a weights
// column when any row names its weights (student or teacher), one column
// per metric any row has, SSLight rows with (+delta) against their
// baseline.
func Markdown(r *Report) string {
	weights := false
	for _, row := range r.Rows {
		weights = weights || row.Weights != ""
	}
	var cols []Column
	for _, c := range Columns {
		for _, row := range r.Rows {
			if _, ok := row.Metrics[c.Key]; ok {
				cols = append(cols, c)
				break
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# sslight evaluation report\n\nrun `%s` · %s · data set: %s\n\n", r.RunID, r.Created, r.Dataset)
	b.WriteString("| model | backbone |")
	if weights {
		b.WriteString(" weights |")
	}
	for _, c := range cols {
		b.WriteString(" " + c.Title + " |")
	}
	b.WriteString("\n|---|---|")
	if weights {
		b.WriteString("---|")
	}
	for range cols {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for i, row := range r.Rows {
		arch := row.Backbone
		if arch == "" {
			arch = row.Arch
		}
		if arch == "" {
			arch = "–"
		}
		fmt.Fprintf(&b, "| %s | %s |", row.Name, arch)
		if weights {
			w := row.Weights
			if w == "" {
				w = "–"
			}
			fmt.Fprintf(&b, " %s |", w)
		}
		base := baselineOf(r.Rows, i)
		for _, c := range cols {
			v, ok := row.Metrics[c.Key]
			if !ok {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(&b, " %.1f", v)
			if base >= 0 {
				if bv, ok := r.Rows[base].Metrics[c.Key]; ok {
					// The delta of the printed (rounded) numbers, so the
					// table adds up for its reader.
					fmt.Fprintf(&b, " (%+.1f)", round1(v)-round1(bv))
				}
			}
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	writeSetup(&b, r)
	return b.String()
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
