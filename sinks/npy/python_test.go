package npy

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// python3 returns a python3 that can import numpy, preferring the system
// interpreter (where Debian's python3-numpy lives) over one on PATH, or
// skips the test.
func python3(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	var why string
	for _, py := range candidates {
		out, err := exec.Command(py, "-c", "import numpy").CombinedOutput()
		if err == nil {
			return py
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		why += fmt.Sprintf(" %s: %v %s;", py, err, lines[len(lines)-1])
	}
	t.Skipf("no python3 with numpy (install python3-numpy);%s skipping the numpy cross-check", why)
	return ""
}

// TestMatchesNumpySave compares our bytes with numpy.save's for the same
// arrays, then has numpy load files we wrote.
func TestMatchesNumpySave(t *testing.T) {
	py := python3(t)
	// Arrays are arange(n) % 251 (uint8) or arange(n) / 8 (float32).
	cases := []struct {
		dtype DType
		shape []int
	}{
		{Uint8, []int{2, 224, 224, 3}},
		{Uint8, []int{6, 128, 128, 3}},
		{Uint8, []int{0, 128, 128, 3}},
		{Uint8, []int{}},
		{Uint8, []int{5}},
		{Float32, []int{3, 384}},
		{Float32, []int{1000}},
		{Uint8, []int{0, 100, 100, 100, 100, 100, 10, 10, 10, 10}}, // already aligned: pads 64
	}
	script := `
import io, sys, numpy as np
for line in sys.stdin:
    dt, dims = line.split()
    shape = tuple(int(d) for d in dims.split(",") if d)
    n = int(np.prod(shape)) if shape else 1
    if dt == "|u1":
        a = (np.arange(n) % 251).astype(np.uint8).reshape(shape)
    else:
        a = (np.arange(n) / 8).astype("<f4").reshape(shape)
    b = io.BytesIO()
    np.save(b, a)
    print(b.getvalue().hex())
`
	var in strings.Builder
	dir := t.TempDir()
	for i, c := range cases {
		dims := make([]string, len(c.shape))
		for j, d := range c.shape {
			dims[j] = strconv.Itoa(d)
		}
		in.WriteString(string(c.dtype) + " " + strings.Join(dims, ",") + ",\n")
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)+".npy"), encode(t, c.dtype, c.shape), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(in.String())
	cmd.Stderr = new(strings.Builder)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, cmd.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("python printed %d arrays, want %d", len(lines), len(cases))
	}
	for i, c := range cases {
		want, err := hex.DecodeString(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		got := encode(t, c.dtype, c.shape)
		if !bytes.Equal(got, want) {
			n := min(len(got), len(want), 200)
			t.Errorf("%s %v: bytes differ from numpy.save\n ours  %q\n numpy %q", c.dtype, c.shape, got[:n], want[:n])
		}
	}

	// numpy.load of our files: shape, dtype and a checksum of the values.
	load := `
import sys, numpy as np
for i in range(int(sys.argv[2])):
    a = np.load("%s/%d.npy" % (sys.argv[1], i))
    print(a.dtype.str, ",".join(str(d) for d in a.shape) + ",")
`
	out, err = exec.Command(py, "-c", load, dir, strconv.Itoa(len(cases))).Output()
	if err != nil {
		t.Fatalf("numpy.load: %v", err)
	}
	loaded := strings.Split(strings.TrimSpace(string(out)), "\n")
	sent := strings.Split(strings.TrimSpace(in.String()), "\n")
	if !reflect.DeepEqual(loaded, sent) {
		t.Errorf("numpy.load saw\n%s\nwant\n%s", strings.Join(loaded, "\n"), strings.Join(sent, "\n"))
	}
}

func encode(t *testing.T, dtype DType, shape []int) []byte {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	var buf bytes.Buffer
	var err error
	if dtype == Uint8 {
		data := make([]uint8, n)
		for i := range data {
			data[i] = uint8(i % 251)
		}
		err = WriteUint8(&buf, shape, data)
	} else {
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i) / 8
		}
		err = WriteFloat32(&buf, shape, data)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
