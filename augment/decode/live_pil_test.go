package decode

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// findPIL returns a python interpreter that can import PIL 9.4, or "" when
// none is installed. SSLIGHT_PYTHON overrides the search.
func findPIL(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("SSLIGHT_PYTHON"), "/usr/bin/python3", "python3"}
	for _, py := range candidates {
		if py == "" {
			continue
		}
		out, err := exec.Command(py, "-c", "import PIL; print(PIL.__version__)").Output()
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), "9.4") {
			return py
		}
	}
	return ""
}

// photoFiles lists the JPEGs in SSLIGHT_PHOTOS (the 76 photos in
// /work/shared/photos) or, when unset, the four in testdata/photos.
func photoFiles(t testing.TB) []string {
	t.Helper()
	dir := os.Getenv("SSLIGHT_PHOTOS")
	if dir == "" {
		dir = filepath.Join("testdata", "photos")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no photos in %s (%v)", dir, err)
	}
	sort.Strings(files)
	return files
}

// pilScript writes Image.open(f).convert("RGB").tobytes() for each file
// named on the command line into the directory given first.
const pilScript = `
import os, sys
from PIL import Image
out = sys.argv[1]
for i, f in enumerate(sys.argv[2:]):
    with open(os.path.join(out, "%d.rgb" % i), "wb") as o:
        o.write(Image.open(f).convert("RGB").tobytes())
`

// TestJPEGAgainstPILLive decodes real photos with this package and with
// PIL itself (when a python3 with PIL 9.4 is installed; CI installs one)
// and reports the differences: none on the libjpeg-turbo path, at most
// goJPEGDefaultTolerance on the Go path.
func TestJPEGAgainstPILLive(t *testing.T) {
	py := findPIL(t)
	if py == "" {
		t.Skip("no python3 with PIL 9.4 (install python3-pil, or set SSLIGHT_PYTHON)")
	}
	files := photoFiles(t)
	out := t.TempDir()
	cmd := exec.Command(py, append([]string{"-c", pilScript, out}, files...)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("PIL: %v\n%s", err, msg)
	}
	tol := goJPEGDefaultTolerance
	if turboJPEG {
		tol = 0
	}
	worst, differing, samples := 0, 0, 0
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i)+".rgb"))
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := Decode(data, Options{})
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(img.Tight()) != len(want) {
			t.Errorf("%s: %d bytes, PIL %d", f, len(img.Tight()), len(want))
			continue
		}
		d := comparePixels(img, want)
		if d.max > tol {
			t.Errorf("%s: %v (tolerance %d)", filepath.Base(f), d, tol)
		}
		worst = max(worst, d.max)
		differing += d.count
		samples += len(want)
	}
	t.Logf("%s back end, %d photos: max |diff| %d, %d of %d samples (%.3f%%) differ from PIL",
		JPEGBackend, len(files), worst, differing, samples, 100*float64(differing)/float64(samples))
}
