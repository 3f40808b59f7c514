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
	if err := fs.Parse([]string{"--cli_test_runner=flink"}); err == nil || !strings.Contains(err.Error(), "flag provided but not defined") {
		t.Errorf("a Beam option on a sub-command without a pipeline: err %v", err)
	}
	fs = NewFlagSet("bench model", "--arch A", "Measure.")
	fs.String("arch", "", "architecture")
	if err := fs.Parse([]string{"--arch", "resnet18", "extra"}); err == nil || err.Error() != `unexpected argument "extra" (flags go before it; see --help)` {
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
		{nil, "missing evaluation mode (see sslight eval --help)"},
		{[]string{"knn"}, `unknown evaluation mode "knn" (see sslight eval --help)`},
	} {
		if err := s.Run(ctx, tc.args); err == nil || err.Error() != tc.want {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
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
