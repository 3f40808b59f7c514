package decode

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/augment"
)

// manifest is testdata/expected.json, written by testdata/gen_expected.py
// from PIL 9.4's Image.open(f).convert("RGB") on every fixture.
type manifest struct {
	PILVersion string `json:"pil_version"`
	Fixtures   []struct {
		File   string `json:"file"`
		RGB    string `json:"rgb"`
		Format string `json:"format"`
		Mode   string `json:"mode"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
		SHA256 string `json:"sha256"`
	} `json:"fixtures"`
	Bad []struct {
		File         string `json:"file"`
		PILException string `json:"pil_exception"`
		PILMessage   string `json:"pil_message"`
	} `json:"bad"`
	Photos []struct {
		File   string `json:"file"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
		SHA256 string `json:"sha256"`
	} `json:"photos"`
}

func loadManifest(t testing.TB) manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("testdata/expected.json: %v", err)
	}
	if !strings.HasPrefix(m.PILVersion, "9.4") {
		t.Fatalf("expectations come from PIL %s, want 9.4", m.PILVersion)
	}
	return m
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pixelDiff compares got with PIL's RGB bytes: the largest absolute
// difference of any sample, how many samples differ, and the first
// position of the largest difference.
type pixelDiff struct {
	max, count int
	x, y, c    int
}

func (d pixelDiff) String() string {
	return fmt.Sprintf("max |diff| %d (first at x=%d y=%d c=%d), %d samples differ", d.max, d.x, d.y, d.c, d.count)
}

func comparePixels(got *augment.Image, want []byte) pixelDiff {
	var d pixelDiff
	tight := got.Tight()
	for i := range want {
		a, b := int(tight[i]), int(want[i])
		diff := a - b
		if diff < 0 {
			diff = -diff
		}
		if diff != 0 {
			d.count++
		}
		if diff > d.max {
			d.max = diff
			p := i / 3
			d.x, d.y, d.c = p%got.W, p/got.W, i%3
		}
	}
	return d
}

// goJPEGTolerance is the largest per-sample difference allowed between the
// pure-Go JPEG path and PIL. Colour conversion and chroma upsampling follow
// libjpeg exactly (jpeg_flat_420 pins that: its flat blocks make every
// IDCT exact), so what remains is image/jpeg's IDCT versus libjpeg's
// ISLOW IDCT, amplified where chroma is upsampled or converted through
// CMYK; YCCK and RGB-with-subsampling also use image/jpeg's own colour
// conversion / nearest upsampling. Measured on these fixtures and the 76
// photos of /work/shared/photos (see TestJPEGAgainstPILLive).
var goJPEGTolerance = map[string]int{
	"jpeg_flat_420":        0,
	"jpeg_flat_420_narrow": 0,
	"jpeg_flat_422":        0,
	"jpeg_flat_440":        0,
	"jpeg_flat_411":        0,
}

// goJPEGDefaultTolerance applies to JPEG fixtures not listed above: the
// largest difference measured (on every fixture and on all 76 photos).
const goJPEGDefaultTolerance = 3

func toleranceFor(name, format string) int {
	if format != FormatJPEG || turboJPEG {
		return 0
	}
	if tol, ok := goJPEGTolerance[name]; ok {
		return tol
	}
	return goJPEGDefaultTolerance
}

// TestDecodeMatchesPIL decodes every fixture and compares format, mode,
// size and pixels with PIL 9.4's output: exactly for PNG, GIF, BMP and
// WebP, and for JPEG exactly on the libjpeg-turbo path and within
// toleranceFor on the Go path.
func TestDecodeMatchesPIL(t *testing.T) {
	m := loadManifest(t)
	if len(m.Fixtures) < 40 {
		t.Fatalf("only %d fixtures in expected.json", len(m.Fixtures))
	}
	for _, fx := range m.Fixtures {
		name := strings.TrimSuffix(filepath.Base(fx.File), filepath.Ext(fx.File))
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, fx.File)
			want := readTestdata(t, fx.RGB)
			if got := fmt.Sprintf("%x", sha256.Sum256(want)); got != fx.SHA256 {
				t.Fatalf("%s: sha256 %s, manifest says %s", fx.RGB, got, fx.SHA256)
			}
			img, info, err := Decode(data, Options{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			wantInfo := Info{Format: fx.Format, Width: fx.Width, Height: fx.Height, Mode: fx.Mode}
			if info != wantInfo {
				t.Errorf("info %v, PIL says %v", info, wantInfo)
			}
			if img.W != fx.Width || img.H != fx.Height || img.Stride != 3*img.W {
				t.Fatalf("image %dx%d stride %d, want %dx%d stride %d", img.W, img.H, img.Stride, fx.Width, fx.Height, 3*fx.Width)
			}
			d := comparePixels(img, want)
			tol := toleranceFor(name, fx.Format)
			if d.max > tol {
				t.Errorf("pixels differ from PIL beyond %d: %v", tol, d)
			} else if d.count > 0 {
				t.Logf("within tolerance %d: %v", tol, d)
			}
			cfg, err := DecodeConfig(data)
			if err != nil || cfg != info {
				t.Errorf("DecodeConfig = %v, %v; Decode reported %v", cfg, err, info)
			}
		})
	}
}

// TestDecodeIntoReusesBuffer decodes a small image into a buffer that was
// allocated for a larger one: the pixels must be identical to a fresh
// decode and the buffer must not be reallocated.
func TestDecodeIntoReusesBuffer(t *testing.T) {
	big := readTestdata(t, "fixtures/png_rgb8.png")
	small := readTestdata(t, "fixtures/gif_no_color_table.gif")
	var dst augment.Image
	if _, err := DecodeInto(&dst, big, Options{}); err != nil {
		t.Fatal(err)
	}
	before := &dst.Pix[:1][0]
	info, err := DecodeInto(&dst, small, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if &dst.Pix[:1][0] != before {
		t.Error("DecodeInto reallocated a buffer that was large enough")
	}
	if dst.W != info.Width || dst.H != info.Height || len(dst.Pix) != 3*info.Width*info.Height {
		t.Fatalf("dst %dx%d len %d for %v", dst.W, dst.H, len(dst.Pix), info)
	}
	fresh, _, err := Decode(small, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(fresh.Pix) != hex.EncodeToString(dst.Pix) {
		t.Error("DecodeInto into a reused buffer differs from Decode")
	}
}

// TestConcurrentDecode decodes every fixture from several goroutines at
// once (as pipeline workers do) and checks each result equals the
// sequential one; run with -race, and with -tags turbojpeg for the pooled
// TurboJPEG handles.
func TestConcurrentDecode(t *testing.T) {
	m := loadManifest(t)
	inputs := make([][]byte, len(m.Fixtures))
	want := make([][]byte, len(m.Fixtures))
	for i, fx := range m.Fixtures {
		inputs[i] = readTestdata(t, fx.File)
		img, _, err := Decode(inputs[i], Options{})
		if err != nil {
			t.Fatalf("%s: %v", fx.File, err)
		}
		want[i] = img.Tight()
	}
	const workers = 4
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			var dst augment.Image
			for round := range 3 {
				for k := range inputs {
					i := (k + w*7 + round) % len(inputs)
					if _, err := DecodeInto(&dst, inputs[i], Options{}); err != nil {
						errs <- fmt.Errorf("%s: %v", m.Fixtures[i].File, err)
						return
					}
					if string(dst.Tight()) != string(want[i]) {
						errs <- fmt.Errorf("%s: concurrent decode differs", m.Fixtures[i].File)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
