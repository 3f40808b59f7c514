package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/augment"
)

// badInputs lists every input in testdata/fixtures that must be refused,
// with the Reason and a fragment of the message that says what was found.
var badInputs = []struct {
	file   string
	reason Reason
	format string
	msg    string
}{
	{"empty.JPEG", ReasonEmpty, "", "zero bytes"},
	{"random.bin", ReasonUnknownFormat, "", "not an image: 512 bytes starting"},
	{"text.JPEG", ReasonUnknownFormat, "", `"<html><b"`},
	{"truncated.jpg", ReasonTruncated, FormatJPEG, "no EOI marker"},
	{"truncated_header.jpg", ReasonTruncated, FormatJPEG, "data ends inside"},
	{"no_eoi.jpg", ReasonTruncated, FormatJPEG, "no EOI marker"},
	{"no_eoi_progressive.jpg", ReasonTruncated, FormatJPEG, "no EOI marker after"},
	{"truncated.png", ReasonTruncated, FormatPNG, ""},
	{"bomb.jpg", ReasonTooLarge, FormatJPEG, "30000x30000 = 900000000 px exceeds limit 178956970"},
	{"bomb.png", ReasonTooLarge, FormatPNG, "30000x30000 = 900000000 px exceeds limit 178956970"},
	{"bomb.gif", ReasonTooLarge, FormatGIF, "30000x30000 = 900000000 px exceeds limit 178956970"},
	{"zero_width.png", ReasonCorrupt, FormatPNG, "zero-size image 0x5"},
	{"bad_crc.png", ReasonCorrupt, FormatPNG, "checksum"},
	{"tiff.tif", ReasonUnsupported, "tiff", "format tiff is not supported"},
}

// pilCompatible says which Reasons agree with the exception PIL 9.4 raises
// for the same bytes (recorded in expected.json): PIL cannot tell an empty,
// unknown, unsupported or corrupt file apart ("cannot identify image
// file"), but it does single out bombs and truncation.
func pilCompatible(exception, message string, r Reason) bool {
	switch {
	case exception == "DecompressionBombError":
		return r == ReasonTooLarge
	case exception == "OSError" && strings.Contains(strings.ToLower(message), "truncated"):
		return r == ReasonTruncated
	case exception == "UnidentifiedImageError":
		return r == ReasonEmpty || r == ReasonUnknownFormat || r == ReasonUnsupported || r == ReasonCorrupt
	}
	return false
}

func TestBadInputsAreRefusedWithReason(t *testing.T) {
	m := loadManifest(t)
	pil := map[string][2]string{}
	for _, b := range m.Bad {
		pil[filepath.Base(b.File)] = [2]string{b.PILException, b.PILMessage}
	}
	if len(pil) != len(badInputs) {
		t.Errorf("expected.json has %d bad inputs, this table %d", len(pil), len(badInputs))
	}
	for _, tc := range badInputs {
		t.Run(tc.file, func(t *testing.T) {
			data := readTestdata(t, "fixtures/"+tc.file)
			img, info, err := Decode(data, Options{})
			if err == nil {
				t.Fatalf("decoded %v, want %s", info, tc.reason)
			}
			if img != nil {
				t.Error("non-nil image returned with an error")
			}
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *decode.Error", err, err)
			}
			if de.Reason != tc.reason || !errors.Is(err, tc.reason) || ReasonOf(err) != tc.reason {
				t.Errorf("reason %q (%v), want %q", de.Reason, err, tc.reason)
			}
			if de.Format != tc.format || info.Format != tc.format {
				t.Errorf("format %q / info %q, want %q", de.Format, info.Format, tc.format)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not say %q", err, tc.msg)
			}
			p, ok := pil[tc.file]
			if !ok {
				t.Fatalf("%s missing from expected.json", tc.file)
			}
			if !pilCompatible(p[0], p[1], de.Reason) {
				t.Errorf("reason %s, but PIL raised %s(%q)", de.Reason, p[0], p[1])
			}
		})
	}
}

// TestErrorsWrapAndClassify checks the error contract the pipeline relies
// on when it wraps errors with the object's URI.
func TestErrorsWrapAndClassify(t *testing.T) {
	_, _, err := Decode(readTestdata(t, "fixtures/truncated.jpg"), Options{})
	wrapped := fmt.Errorf("decode %s: %w", "gs://bucket/n01440764/x.JPEG", err)
	if !errors.Is(wrapped, ReasonTruncated) || errors.Is(wrapped, ReasonCorrupt) {
		t.Errorf("errors.Is on %v", wrapped)
	}
	if got := ReasonOf(wrapped); got != ReasonTruncated {
		t.Errorf("ReasonOf = %q", got)
	}
	if got := ReasonOf(errors.New("other")); got != "" {
		t.Errorf("ReasonOf(foreign error) = %q", got)
	}
	if got := ReasonOf(nil); got != "" {
		t.Errorf("ReasonOf(nil) = %q", got)
	}
	want := "decode: truncated: format jpeg: no EOI marker after the scan data"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want prefix %q", err, want)
	}
}

// bombHeaders are minimal files of every format whose header announces
// 30000×30000 pixels (900 MP, 2.7 GB as RGB), built here byte by byte.
func bombHeaders(t testing.TB) map[string][]byte {
	bmpHdr := make([]byte, 14+40)
	copy(bmpHdr, "BM")
	binary.LittleEndian.PutUint32(bmpHdr[2:], uint32(len(bmpHdr)))
	binary.LittleEndian.PutUint32(bmpHdr[10:], uint32(len(bmpHdr)))
	binary.LittleEndian.PutUint32(bmpHdr[14:], 40)
	binary.LittleEndian.PutUint32(bmpHdr[18:], 30000)
	binary.LittleEndian.PutUint32(bmpHdr[22:], 30000)
	binary.LittleEndian.PutUint16(bmpHdr[26:], 1)
	binary.LittleEndian.PutUint16(bmpHdr[28:], 24)

	webpHdr := []byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00")
	webpHdr = append(webpHdr, 0x2f, 0x75, 0x00, 0x2f, 0x75, 0x00) // 30000-1, little-endian 24-bit
	binary.LittleEndian.PutUint32(webpHdr[4:], uint32(len(webpHdr)-8))

	return map[string][]byte{
		"jpeg": readTestdata(t, "fixtures/bomb.jpg"),
		"png":  readTestdata(t, "fixtures/bomb.png"),
		"gif":  readTestdata(t, "fixtures/bomb.gif"),
		"bmp":  bmpHdr,
		"webp": webpHdr,
	}
}

// TestBombRefusedWithoutAllocating proves the pixel limit is applied to
// the header before anything proportional to the image is allocated: a
// refusal costs a few hundred bytes, not 2.7 GB.
func TestBombRefusedWithoutAllocating(t *testing.T) {
	for format, data := range bombHeaders(t) {
		t.Run(format, func(t *testing.T) {
			info, err := DecodeConfig(data)
			if err != nil || info.Width != 30000 || info.Height != 30000 || info.Format != format {
				t.Fatalf("DecodeConfig = %v, %v; want %s 30000x30000", info, err, format)
			}
			var dst augment.Image
			const runs = 50
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range runs {
				_, err = DecodeInto(&dst, data, Options{})
			}
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ReasonTooLarge) {
				t.Fatalf("err = %v, want too_large", err)
			}
			perCall := (after.TotalAlloc - before.TotalAlloc) / runs
			if perCall > 4096 {
				t.Errorf("refusing a 900 MP header allocated %d bytes per call", perCall)
			}
			allocs := testing.AllocsPerRun(runs, func() { _, _ = DecodeInto(&dst, data, Options{}) })
			t.Logf("%d bytes, %.0f allocations per refusal", perCall, allocs)
			if len(dst.Pix) != 0 {
				t.Errorf("destination grew to %d bytes", len(dst.Pix))
			}
		})
	}
}

// TestMaxPixels checks the limit is inclusive (PIL refuses only pixels >
// limit), configurable, and can be disabled.
func TestMaxPixels(t *testing.T) {
	data := readTestdata(t, "fixtures/png_rgb8.png") // 45×31 = 1395 px
	for _, tc := range []struct {
		max    int64
		refuse bool
	}{
		{0, false}, {-1, false}, {1395, false}, {1394, true}, {1, true},
	} {
		_, _, err := Decode(data, Options{MaxPixels: tc.max})
		if refused := errors.Is(err, ReasonTooLarge); refused != tc.refuse || (err != nil && !refused) {
			t.Errorf("MaxPixels %d: err = %v, want refused=%v", tc.max, err, tc.refuse)
		}
		if tc.max == 1394 && err != nil && !strings.Contains(err.Error(), "45x31 = 1395 px exceeds limit 1394") {
			t.Errorf("message %q", err)
		}
	}
	if DefaultMaxPixels != 178956970 {
		t.Errorf("DefaultMaxPixels = %d, PIL's is 178956970", DefaultMaxPixels)
	}
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format string
		ok     bool
	}{
		{"fixtures/jpeg_420.jpg", FormatJPEG, true},
		{"fixtures/png_disguised.JPEG", FormatPNG, true},
		{"fixtures/gif_basic.gif", FormatGIF, true},
		{"fixtures/bmp_rgb24.bmp", FormatBMP, true},
		{"fixtures/webp_lossless.webp", FormatWebP, true},
		{"fixtures/tiff.tif", "tiff", false},
		{"fixtures/text.JPEG", "", false},
		{"fixtures/random.bin", "", false},
		{"fixtures/empty.JPEG", "", false},
	} {
		format, ok := Sniff(readTestdata(t, tc.file))
		if format != tc.format || ok != tc.ok {
			t.Errorf("Sniff(%s) = %q, %v; want %q, %v", tc.file, format, ok, tc.format, tc.ok)
		}
	}
	for _, tc := range []struct {
		data   string
		format string
		ok     bool
	}{
		{"BMW is a car maker and this is text", "", false}, // "BM" alone is not a BMP
		{"RIFF\x10\x00\x00\x00WAVEfmt ", "", false},        // RIFF but not WebP
		{"\xff\xd8", "", false},                            // too short for a JPEG marker
		{"P6\n3 2\n255\n", "pnm", false},
		{"\x00\x00\x00\x1cftypavif", "heif", false},
		{"8BPS\x00\x01", "psd", false},
	} {
		format, ok := Sniff([]byte(tc.data))
		if format != tc.format || ok != tc.ok {
			t.Errorf("Sniff(%q) = %q, %v; want %q, %v", tc.data, format, ok, tc.format, tc.ok)
		}
	}
}

// TestCorruptHeaders feeds headers that are damaged in specific ways and
// checks each is refused with the right reason before decoding.
func TestCorruptHeaders(t *testing.T) {
	jpeg := readTestdata(t, "fixtures/jpeg_420.jpg")
	png := readTestdata(t, "fixtures/png_rgb8.png")
	gif := readTestdata(t, "fixtures/gif_basic.gif")
	webp := readTestdata(t, "fixtures/webp_lossy.webp")
	withByte := func(b []byte, i int, v byte) []byte {
		c := append([]byte(nil), b...)
		c[i] = v
		return c
	}
	sof := strings.Index(string(jpeg), "\xff\xc0")
	for _, tc := range []struct {
		name   string
		data   []byte
		reason Reason
		msg    string
	}{
		{"jpeg 12-bit", withByte(jpeg, sof+4, 12), ReasonUnsupported, "12-bit JPEG"},
		{"jpeg 2 components", withByte(jpeg, sof+9, 2), ReasonUnsupported, "2-component JPEG"},
		{"jpeg zero height", withByte(withByte(jpeg, sof+5, 0), sof+6, 0), ReasonCorrupt, "zero-size image 45x0"},
		{"jpeg bad segment length", withByte(withByte(jpeg, 4, 0), 5, 1), ReasonCorrupt, "has length 1"},
		{"jpeg EOI before scan", append([]byte{0xff, 0xd8, 0xff, 0xd9}, jpeg[2:]...), ReasonCorrupt, "EOI at offset 2 before any scan"},
		{"png bad colour type", withByte(png, 25, 5), ReasonCorrupt, "invalid colour type 5 with bit depth 8"},
		{"png first chunk not IHDR", withByte(png, 12, 'X'), ReasonCorrupt, `first chunk is "XHDR"`},
		{"png cut in IHDR", png[:20], ReasonTruncated, "IHDR"},
		{"gif cut in header", gif[:10], ReasonTruncated, "logical screen descriptor"},
		{"gif trailer only", append(withByte(gif[:13], 10, 0), ';'), ReasonCorrupt, "no image before the trailer"},
		{"webp not a key frame", withByte(webp, 20, webp[20]|1), ReasonCorrupt, "not a key frame"},
		{"webp cut", webp[:18], ReasonTruncated, "first RIFF chunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode(tc.data, Options{})
			if !errors.Is(err, tc.reason) || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want %s mentioning %q", err, tc.reason, tc.msg)
			}
		})
	}
}
