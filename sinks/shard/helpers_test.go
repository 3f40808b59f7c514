package shard

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// testHash is a config hash of the usual shape: a sha256 hex digest.
const testHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// pixel is the value of byte j of view stack `which` (0 global, 1 local) of
// sample i. The Python test computes the same formula with numpy, so the
// expectation does not go through our encoder.
func pixel(i, which, j int) uint8 { return uint8((i*31 + which*17 + j*7) % 251) }

type dims struct{ g, gh, gw, l, lh, lw int }

var (
	small     = dims{2, 8, 6, 3, 4, 5}
	realistic = dims{2, 224, 224, 6, 128, 128}
)

func makeViews(i, which, count, h, w int) Views {
	pix := make([]uint8, count*h*w*Channels)
	for j := range pix {
		pix[j] = pixel(i, which, j)
	}
	return Views{Count: count, Height: h, Width: w, Pix: pix}
}

func makeSample(i int, d dims) *Sample {
	return &Sample{
		Key:    fmt.Sprintf("n01440764_%05d", i),
		Meta:   []byte(fmt.Sprintf(`{"uri":"gs://bucket/train/n01440764/%05d.JPEG","label":%d}`, i, i%10)),
		Global: makeViews(i, 0, d.g, d.gh, d.gw),
		Local:  makeViews(i, 1, d.l, d.lh, d.lw),
	}
}

// writeShard writes n samples of size d and returns the shard's Info.
func writeShard(t testing.TB, out string, epoch, index, n int, d dims) Info {
	t.Helper()
	w, err := Create(context.Background(), out, testHash, epoch, index)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for i := 0; i < n; i++ {
		if err := w.Add(makeSample(i, d)); err != nil {
			t.Fatal(err)
		}
	}
	info, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// encodeSamples returns the tar bytes of n samples, written in memory.
func encodeSamples(t testing.TB, n int, d dims) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := newEncoder(&buf)
	for i := 0; i < n; i++ {
		if _, err := e.add(makeSample(i, d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// crc32c is an independent CRC32C of b, straight from hash/crc32.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// python3 returns a python3 that can import numpy, preferring the system
// interpreter (Debian's python3-numpy), or skips the test.
func python3(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	var why []string
	for _, py := range candidates {
		if _, err := os.Stat(py); err != nil {
			continue
		}
		out, err := exec.Command(py, "-c", "import numpy").CombinedOutput()
		if err == nil {
			return py
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		why = append(why, py+": "+lines[len(lines)-1])
	}
	t.Skipf("no python3 with numpy (install python3-numpy; %s): skipping the Python cross-check", strings.Join(why, "; "))
	return ""
}
