package report

import (
	"fmt"
	"sort"
	"strings"
)

// Setup is how a report was made: what a paper's table or an issue needs
// to reproduce it — the software, the machine, the data as it was read and
// the evaluation's seed. Each row's pre-training is in Row.Pretraining.
type Setup struct {
	// Software is the sslight build ("sslight v1.2.3 (commit …, tags …)").
	Software string  `json:"software"`
	Machine  Machine `json:"machine"`
	// Train and Val are the evaluation's labelled sources.
	Train Source `json:"train"`
	Val   Source `json:"val"`
	// Seed seeds the protocols' subsets and shuffles.
	Seed uint64 `json:"eval_seed"`
}

// Machine is where the evaluation ran.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// Device is what the models ran on: "cpu", or the GPU's name.
	Device string `json:"device"`
}

// Source is one data set as the evaluation listed it.
type Source struct {
	URI     string `json:"uri"`
	Format  string `json:"format"`
	Split   string `json:"split,omitempty"`
	Images  int    `json:"images"`
	Classes int    `json:"classes"`
}

// Pretraining is how a row's checkpoint was trained, from its meta.json.
type Pretraining struct {
	// Config is the preset or file the run was configured from, when the
	// trainer was told; ConfigHash its canonical hash.
	Config        string `json:"config,omitempty"`
	ConfigHash    string `json:"config_hash"`
	Method        string `json:"method"`
	Backbone      string `json:"backbone"`
	Views         string `json:"views"`
	Epochs        int    `json:"epochs"`
	ItersPerEpoch int    `json:"iters_per_epoch"`
	BatchSize     int    `json:"batch_size"`
	Steps         int    `json:"steps"`
	ImagesSeen    int64  `json:"images_seen"`
	Seed          int    `json:"seed"`
}

// writeSetup renders the report's "How this was made" section.
func writeSetup(b *strings.Builder, r *Report) {
	s := r.Setup
	var lines []string
	if s != nil {
		lines = append(lines, fmt.Sprintf("data: %s — train %s (%s, %d images, %d classes), validation %s (%d images)",
			r.Dataset, s.Train.URI, s.Train.Format, s.Train.Images, s.Train.Classes, s.Val.URI, s.Val.Images))
	}
	for _, row := range r.Rows {
		switch {
		case row.Pretraining != nil:
			p := row.Pretraining
			cfg := p.Config
			if cfg == "" {
				cfg = "config"
			}
			w := ""
			if row.Weights != "" {
				w = ", " + row.Weights + " weights evaluated"
			}
			lines = append(lines, fmt.Sprintf("%s: %s %s, views %s; %s (hash %.12s); %s × %d iterations of batch %d = %d steps, %d images seen; seed %d%s",
				row.Name, p.Method, p.Backbone, p.Views, cfg, p.ConfigHash, plural(p.Epochs, "epoch"), p.ItersPerEpoch, p.BatchSize, p.Steps, p.ImagesSeen, p.Seed, w))
		case row.Setting == SettingRandomInit && row.Backbone != "":
			lines = append(lines, fmt.Sprintf("%s: %s, freshly initialised (seed %d)", row.Name, row.Backbone, row.Seed))
		}
	}
	// The protocols' settings, once: every row ran the same ones.
	for _, row := range r.Rows {
		if len(row.Protocols) == 0 || row.Setting == SettingRawPixels {
			continue
		}
		keys := make([]string, 0, len(row.Protocols))
		for k := range row.Protocols {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k != "dead_letters" && !strings.HasSuffix(k, "_by_k") {
				lines = append(lines, k+": "+row.Protocols[k])
			}
		}
		break
	}
	if s != nil {
		m := s.Machine
		lines = append(lines, fmt.Sprintf("machine: %s, %d cores (GOMAXPROCS %d), models on %s; %s; evaluation seed %d",
			m.CPU, m.Cores, m.GOMAXPROCS, m.Device, s.Software, s.Seed))
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("\n## How this was made\n\n")
	for _, l := range lines {
		b.WriteString("- " + l + "\n")
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
