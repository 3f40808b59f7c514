package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample() *Report {
	return &Report{RunID: "r1", Created: "2026-11-27T00:00:00Z", Dataset: "fashion_mnist", Rows: []Row{
		{Name: "raw pixels", Setting: SettingRawPixels, Dataset: "fashion_mnist", Metrics: map[string]float64{"knn_top1": 84.6, "linear_top1": 84.0}},
		{Name: "DINO", Method: "DINO", Setting: SettingBaseline, Arch: "resnet18", Dataset: "fashion_mnist", Metrics: map[string]float64{"knn_top1": 73.5, "linear_top1": 72.4}},
		{Name: "DINO + SSLight", Method: "DINO", Setting: SettingSSLight, Arch: "resnet18", Dataset: "fashion_mnist", Metrics: map[string]float64{"knn_top1": 76.4, "linear_top1": 76.75}},
	}, Notes: []string{"linear: fast mode"}}
}

func TestMarkdown(t *testing.T) {
	want := "| model | backbone | kNN top-1 | linear top-1 |\n" +
		"|---|---|---:|---:|\n" +
		"| raw pixels | – | 84.6 | 84.0 |\n" +
		"| DINO | resnet18 | 73.5 | 72.4 |\n" +
		"| DINO + SSLight | resnet18 | 76.4 (+2.9) | 76.8 (+4.4) |\n" +
		"\n- linear: fast mode\n"
	got := Markdown(sample())
	if !strings.HasSuffix(got, want) {
		t.Errorf("markdown:\n%s\nwant it to end with:\n%s", got, want)
	}
}

// A report of checkpoint rows says which weights each row evaluated, and
// a teacher row is compared with the teacher of its baseline only.
func TestMarkdownWeights(t *testing.T) {
	r := sample()
	r.Rows[1].Weights, r.Rows[2].Weights = "student", "teacher"
	teacher := r.Rows[1]
	teacher.Name, teacher.Weights, teacher.Metrics = "DINO (teacher)", "teacher", map[string]float64{"knn_top1": 75.0, "linear_top1": 74.0}
	r.Rows = append(r.Rows, teacher)
	want := "| model | backbone | weights | kNN top-1 | linear top-1 |\n" +
		"|---|---|---|---:|---:|\n" +
		"| raw pixels | – | – | 84.6 | 84.0 |\n" +
		"| DINO | resnet18 | student | 73.5 | 72.4 |\n" +
		"| DINO + SSLight | resnet18 | teacher | 76.4 (+1.4) | 76.8 (+2.8) |\n" +
		"| DINO (teacher) | resnet18 | teacher | 75.0 | 74.0 |\n"
	if got := Markdown(r); !strings.Contains(got, want) {
		t.Errorf("markdown:\n%s\nwant it to hold:\n%s", got, want)
	}
}

func TestCSV(t *testing.T) {
	got := string(CSV(sample()))
	for _, line := range []string{
		"name,setting,method,arch,dataset,metric,value,checkpoint,config_hash",
		"DINO + SSLight,sslight,DINO,resnet18,fashion_mnist,linear_top1,76.75,,",
		"raw pixels,raw-pixels,,,fashion_mnist,knn_top1,84.6,,",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("csv lacks %q:\n%s", line, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 7 {
		t.Errorf("csv has %d lines, want 7 (header + 6 metrics)", n)
	}
}

func TestWriteAndPlots(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := Write(ctx, dir, sample()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"metrics.json", "metrics.csv", "report.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if err := LinePlot(ctx, filepath.Join(dir, "loss.png"), "loss", "step", "loss",
		[]Series{{Name: "a", X: []float64{0, 1, 2}, Y: []float64{3, 2, 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := BarPlot(ctx, filepath.Join(dir, "acc.png"), "top-1", "%", []string{"x", "y"},
		[]Series{{Name: "kNN", Y: []float64{1, 2}}, {Name: "linear", Y: []float64{2, 3}}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"loss.png", "acc.png"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if r := img.Bounds(); r.Dx() < 100 || r.Dy() < 100 {
			t.Errorf("%s is %v", f, r)
		}
	}
	if err := LinePlot(ctx, filepath.Join(dir, "bad.png"), "", "", "", []Series{{X: []float64{1}, Y: nil}}); err == nil {
		t.Error("mismatched series accepted")
	}
}
