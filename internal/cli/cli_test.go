package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// Global flags standing in for the Beam options of the binary's flag set.
var (
	globalRunner = flag.String("cli_test_runner", "prism", "the runner")
	globalLabels = flag.String("cli_test_labels", "", "job labels")
)

func TestPipelineFlagSetTakesBeamOptions(t *testing.T) {
	fs := NewPipelineFlagSet("prepare", "--out URI", "Prepare shards.")
	out := fs.String("out", "", "output root")
	labels := fs.String("cli_test_labels", "", "the sub-command's own labels")
	if err := fs.Parse([]string{"--out", "o", "--cli_test_runner=flink", "--cli_test_labels", "mine"}); err != nil {
		t.Fatal(err)
	}
	if *out != "o" || *globalRunner != "flink" || *labels != "mine" || *globalLabels != "" {
		t.Errorf("out %q, runner %q, own labels %q, global labels %q: want o, flink, mine and the global one untouched", *out, *globalRunner, *labels, *globalLabels)
	}
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.Usage()
	h := help.String()
	for _, want := range []string{"Usage: sslight prepare --out URI\n\nPrepare shards.\n\nFlags:\n", "  --out string\n    \toutput root\n",
		"the sub-command's own labels", "Beam pipeline options are accepted too (full list: sslight prepare --help-beam)"} {
		if !strings.Contains(h, want) {
			t.Errorf("help lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "the runner") || strings.Contains(h, "--help-beam string") {
		t.Errorf("help lists the Beam options themselves:\n%s", h)
	}
	if err := NewPipelineFlagSet("x", "", "").Parse([]string{"--help-beam"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help-beam: err %v, want flag.ErrHelp", err)
	}
}

func TestFlagSetRefusesWhatItDoesNotKnow(t *testing.T) {
	fs := NewFlagSet("bench model", "--arch A", "Measure.")
	fs.SetOutput(&bytes.Buffer{})
	fs.String("arch", "", "architecture")
	short := "\nUsage: sslight bench model --arch A\n(sslight bench model --help lists every flag)"
	if err := fs.Parse([]string{"--cli_test_runner=flink"}); err == nil || err.Error() != "unknown flag --cli_test_runner"+short {
		t.Errorf("a Beam option on a sub-command without a pipeline: err %v", err)
	}
	fs = NewFlagSet("bench model", "--arch A", "Measure.")
	fs.String("arch", "", "architecture")
	if err := fs.Parse([]string{"--arch", "resnet18", "extra"}); err == nil || err.Error() != `unexpected argument "extra" (flags go before it)`+short {
		t.Errorf("a left-over argument: err %v", err)
	}
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.Usage()
	if strings.Contains(help.String(), "Beam pipeline options") {
		t.Errorf("help of a sub-command without a pipeline mentions Beam:\n%s", help.String())
	}
}

func TestPrintFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("size", 224, "input `px`")
	fs.Bool("quiet", false, "no progress")
	fs.String("out", "", "where to\nwrite")
	fs.Int("limit", 0, "first N")
	var b bytes.Buffer
	PrintFlags(&b, fs, func(f *flag.Flag) bool { return f.Name != "limit" })
	want := "  --out string\n    \twhere to\n    \twrite\n" +
		"  --quiet\n    \tno progress\n" +
		"  --size px\n    \tinput px (default 224)\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestModeSet(t *testing.T) {
	var ran []string
	s := &ModeSet{Command: "eval", Noun: "evaluation mode", Header: "Usage: sslight eval <mode>\n\nModes:\n",
		Modes: map[string]Mode{"coco": {Summary: "COCO AP", Run: func(_ context.Context, args []string) error {
			ran = append(ran, "coco "+strings.Join(args, " "))
			return nil
		}}},
		Fallback: func(_ context.Context, args []string) error {
			ran = append(ran, "fallback "+strings.Join(args, " "))
			return nil
		}}
	ctx := context.Background()
	for _, args := range [][]string{{"coco", "--gt", "g"}, {"--checkpoint", "c"}} {
		if err := s.Run(ctx, args); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(ran, "|") != "coco --gt g|fallback --checkpoint c" {
		t.Errorf("ran %q", ran)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"knn"}, `unknown evaluation mode "knn" (see sslight eval --help)`},
		{[]string{"cocoo"}, `unknown evaluation mode "cocoo"; did you mean "coco"? (see sslight eval --help)`},
	} {
		if err := s.Run(ctx, tc.args); err == nil || err.Error() != tc.want {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	// Bare: the fallback runs (and says what it misses); without a
	// fallback the mode is what is missing.
	ran = nil
	if err := s.Run(ctx, nil); err != nil || strings.Join(ran, "|") != "fallback " {
		t.Errorf("bare: err %v, ran %q", err, ran)
	}
	// --help shows the fallback's flags, then the modes.
	ran = nil
	if err := s.Run(ctx, []string{"--help"}); !errors.Is(err, flag.ErrHelp) || strings.Join(ran, "|") != "fallback --help" {
		t.Errorf("--help: err %v, ran %q", err, ran)
	}
	noFallback := &ModeSet{Command: "bench", Noun: "benchmark", Modes: s.Modes}
	if err := noFallback.Run(ctx, nil); err == nil || err.Error() != "missing benchmark (see sslight bench --help)" {
		t.Errorf("bare without fallback: err %v", err)
	}
	if err := s.Run(ctx, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: err %v", err)
	}
	var u bytes.Buffer
	s.Usage(&u)
	if u.String() != "Usage: sslight eval <mode>\n\nModes:\n  coco     COCO AP\n\nRun 'sslight eval <evaluation mode> --help' for its flags.\n" {
		t.Errorf("usage %q", u.String())
	}
}

func TestRepeated(t *testing.T) {
	var r Repeated
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Var(&r, "set", "KEY=VALUE")
	if err := fs.Parse([]string{"--set", "A=1", "--set", "B=2,3"}); err != nil {
		t.Fatal(err)
	}
	if len(r) != 2 || r[0] != "A=1" || r[1] != "B=2,3" || r.String() != "A=1,B=2,3" {
		t.Errorf("collected %q", r)
	}
}

func TestSuggest(t *testing.T) {
	flags := []string{"shards", "out", "config", "checkpoint", "resume", "epochs", "batch-size", "init-from", "set"}
	cmds := []string{"prepare", "pretrain", "eval", "run", "retrain", "export", "embed", "bench", "dataset"}
	for _, tc := range []struct {
		word       string
		candidates []string
		want       string
	}{
		{"shard", flags, "shards"},
		{"chekpoint", flags, "checkpoint"},
		{"batchsize", flags, "batch-size"},
		{"batch", flags, "batch-size"}, // the one flag it starts
		{"epoch", flags, "epochs"},
		{"pretrian", cmds, "pretrain"},
		{"evl", cmds, "eval"},
		{"retrian", cmds, "retrain"},
		{"xyz", flags, ""},
		{"ou", flags, "out"},
		{"e", cmds, ""}, // too short to mean anything
		{"bnech", cmds, "bench"},
	} {
		if got := Suggest(tc.word, tc.candidates); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}

func TestUnknownFlagSuggests(t *testing.T) {
	fs := NewFlagSet("pretrain", "--shards URI --out URI", "Train.")
	fs.String("shards", "", "")
	fs.String("out", "", "")
	err := fs.Parse([]string{"--shard", "x"})
	if err == nil || !strings.HasPrefix(err.Error(), "unknown flag --shard; did you mean --shards?\nUsage: sslight pretrain --shards URI --out URI\n") {
		t.Errorf("err %v", err)
	}
	fs = NewFlagSet("pretrain", "", "")
	fs.Int("epochs", 0, "")
	if err := fs.Parse([]string{"--epochs", "many"}); err == nil || !strings.HasPrefix(err.Error(), `invalid value "many" for flag --epochs`) {
		t.Errorf("bad value: err %v", err)
	}
}

func TestRequireAndAtLeast(t *testing.T) {
	fs := NewFlagSet("pretrain", "--config F --shards URI --out URI", "")
	fs.String("config", "", "")
	fs.String("shards", "", "")
	fs.String("out", "", "")
	batch := fs.Int("batch-size", 0, "")
	fs.Int("epochs", 0, "")
	fs.Int("workers", 0, "")
	if err := fs.Parse([]string{"--config", "c", "--batch-size", "0", "--epochs", "-1", "--workers", "0"}); err != nil {
		t.Fatal(err)
	}
	if err := fs.Require("config", "shards", "out"); err == nil || !strings.HasPrefix(err.Error(), "missing --shards and --out\n") {
		t.Errorf("Require: %v", err)
	}
	if err := fs.Require("config"); err != nil {
		t.Errorf("Require(config): %v", err)
	}
	if err := fs.AtLeast(1, "batch-size", "epochs"); err == nil || err.Error() != "--batch-size 0, --epochs -1: want at least 1" {
		t.Errorf("AtLeast(1): %v (batch %d)", err, *batch)
	}
	if err := fs.AtLeast(0, "workers"); err != nil {
		t.Errorf("AtLeast(0, workers=0): %v", err)
	}
	fs = NewFlagSet("x", "", "")
	fs.Int("batch-size", 0, "")
	fs.Parse(nil)
	if err := fs.AtLeast(1, "batch-size"); err != nil {
		t.Errorf("an unset flag is not checked: %v", err)
	}
	if err := fs.Require("batch-size"); err == nil {
		t.Error("an unset numeric flag left at 0 is missing")
	}
}
