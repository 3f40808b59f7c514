package optim

import (
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"
)

// numpyPython returns a Python interpreter that can import numpy, or "".
// CI installs python3-numpy; the first python3 on PATH may be another
// installation, so the system one is tried as well.
func numpyPython() string {
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import numpy").Run() == nil {
			return path
		}
	}
	return ""
}

// numpySchedules computes the schedules with numpy in float64, written from
// the formulas in the golden README (linspace warm-up including both ends,
// then final + 0.5·(base−final)·(1+cos(π·i/n))), for many more sizes than
// the golden files hold.
const numpySchedules = `
import json, sys
import numpy as np
out = []
for c in json.load(sys.stdin):
    w = c["warmup"] * c["iters"]
    n = c["epochs"] * c["iters"] - w
    ramp = np.linspace(c["start"], c["base"], w) if w > 0 else np.zeros(0)
    i = np.arange(n)
    tail = c["final"] + 0.5 * (c["base"] - c["final"]) * (1 + np.cos(np.pi * i / n))
    temp = np.concatenate((np.linspace(c["start"], c["final"], c["warmup"]),
                           np.ones(c["epochs"] - c["warmup"]) * c["final"]))
    out.append({"cosine": np.concatenate((ramp, tail)).tolist(), "temp": temp.tolist()})
json.dump(out, sys.stdout)
`

func TestSchedulesMatchNumpy(t *testing.T) {
	py := numpyPython()
	if py == "" {
		t.Skip("python3 with numpy not found (CI installs python3-numpy); the golden cases still cover the schedules")
	}
	type config struct {
		Base   float64 `json:"base"`
		Final  float64 `json:"final"`
		Start  float64 `json:"start"`
		Epochs int     `json:"epochs"`
		Iters  int     `json:"iters"`
		Warmup int     `json:"warmup"`
	}
	var cases []config
	for _, e := range []int{1, 2, 3, 7, 30, 100} {
		for _, it := range []int{1, 3, 5, 17} {
			for _, w := range []int{0, 1, e / 3, e} {
				cases = append(cases,
					config{Base: 0.24, Final: 0.0048, Start: 0, Epochs: e, Iters: it, Warmup: w},
					config{Base: 0.996, Final: 1, Start: 0.075, Epochs: e, Iters: it, Warmup: w},
					config{Base: 0.04, Final: 0.4, Start: 1e-6, Epochs: e, Iters: it, Warmup: w},
				)
			}
		}
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", numpySchedules)
	cmd.Stdin = bytes.NewReader(in)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, stderr.String())
	}
	var want []struct {
		Cosine []float64 `json:"cosine"`
		Temp   []float64 `json:"temp"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(cases) {
		t.Fatalf("numpy returned %d schedules for %d cases", len(want), len(cases))
	}
	for k, c := range cases {
		got, err := CosineSchedule(c.Base, c.Final, c.Epochs, c.Iters, c.Warmup, c.Start)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		// Go's and numpy's cos may differ in the last bit, which 1+cos
		// near −1 turns into a few ulps of the schedule's scale; linspace
		// is reproduced exactly.
		scale := math.Max(math.Abs(c.Base), math.Abs(c.Final))
		compareClose(t, "cosine", c, got, want[k].Cosine, 4*scale*0x1p-52)
		temp, err := TeacherTempSchedule(c.Start, c.Final, c.Warmup, c.Epochs)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		compareClose(t, "teacher temp", c, temp, want[k].Temp, 0)
	}
}

func compareClose(t *testing.T, what string, c any, got, want []float64, abs float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s %+v: %d values, numpy %d", what, c, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); d > abs {
			t.Fatalf("%s %+v [%d] = %.17g, numpy %.17g (diff %.3g > %.3g)", what, c, i, got[i], want[i], d, abs)
		}
	}
}
