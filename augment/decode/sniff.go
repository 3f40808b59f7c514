package decode

import (
	"bytes"
	"encoding/binary"
)

// Format names returned by Sniff and reported in Info.Format.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatGIF  = "gif"
	FormatBMP  = "bmp"
	FormatWebP = "webp"
)

// signature maps a magic prefix to a format. supported says whether Decode
// handles it; the others are recognised only to give a precise dead-letter
// reason ("format tiff is not supported" instead of "unknown format").
type signature struct {
	format    string
	supported bool
	match     func(b []byte) bool
}

func prefix(p string) func([]byte) bool {
	return func(b []byte) bool { return bytes.HasPrefix(b, []byte(p)) }
}

var signatures = []signature{
	{FormatJPEG, true, prefix("\xff\xd8\xff")},
	{FormatPNG, true, prefix("\x89PNG\r\n\x1a\n")},
	{FormatGIF, true, func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a"))
	}},
	{FormatWebP, true, func(b []byte) bool {
		// PIL accepts RIFF....WEBP followed by one of the three chunk kinds.
		if len(b) < 16 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
			return false
		}
		switch string(b[12:16]) {
		case "VP8 ", "VP8L", "VP8X":
			return true
		}
		return false
	}},
	{FormatBMP, true, func(b []byte) bool {
		// "BM" alone would claim any text starting with "BM"; also require a
		// known DIB header size, which every BMP reader relies on.
		if len(b) < 18 || b[0] != 'B' || b[1] != 'M' {
			return false
		}
		switch binary.LittleEndian.Uint32(b[14:18]) {
		case 12, 16, 40, 52, 56, 64, 108, 124:
			return true
		}
		return false
	}},
	{"tiff", false, func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*"))
	}},
	{"psd", false, prefix("8BPS")},
	{"ico", false, prefix("\x00\x00\x01\x00")},
	{"jpeg2000", false, func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cjP  \r\n\x87\n")) ||
			bytes.HasPrefix(b, []byte("\xff\x4f\xff\x51"))
	}},
	{"jpegxl", false, func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("\xff\x0a")) ||
			bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n"))
	}},
	{"heif", false, func(b []byte) bool {
		if len(b) < 12 || string(b[4:8]) != "ftyp" {
			return false
		}
		switch string(b[8:12]) {
		case "heic", "heix", "hevc", "hevx", "mif1", "msf1", "avif", "avis":
			return true
		}
		return false
	}},
	{"pnm", false, func(b []byte) bool {
		return len(b) >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' &&
			(b[2] == '\n' || b[2] == '\r' || b[2] == ' ' || b[2] == '\t')
	}},
}

// Sniff identifies an image format from the first bytes of data. format is
// one of the Format constants when ok is true. When ok is false, format is
// either "" (not an image this package recognises) or the name of a
// recognised format that Decode does not support ("tiff", "psd", "ico",
// "jpeg2000", "jpegxl", "heif", "pnm").
func Sniff(data []byte) (format string, ok bool) {
	for _, s := range signatures {
		if s.match(data) {
			return s.format, s.supported
		}
	}
	return "", false
}
