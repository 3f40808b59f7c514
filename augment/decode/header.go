package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// header is everything learnt from an image's header before any pixel is
// decoded: the public Info plus the per-format details the decoders and the
// PIL-compatible conversions need.
type header struct {
	Info
	jpeg jpegHeader
	png  pngHeader
	gif  gifHeader
}

type jpegHeader struct {
	components     int
	progressive    bool
	adobe          bool // an APP14 "Adobe" segment was seen before the first scan
	adobeTransform byte
	sos            int // offset of the first SOS marker (FF DA)
}

type pngHeader struct {
	depth, colorType byte
	palette          []byte // PLTE payload, 3 bytes per entry; nil when absent
	interlaced       bool   // Adam7: image/png decodes every pass into an image of its own
	// idatEnd is the offset just past the first run of IDAT chunks when that
	// run is complete in data, else 0. Everything after it is irrelevant to
	// the pixels (PIL ignores it too), so the Go decoder is fed data[:idatEnd]
	// plus a synthetic IEND and a missing or damaged tail is harmless.
	idatEnd int
}

type gifHeader struct {
	screenWidth, screenHeight int
	// The canvas is the PIL image size: the logical screen, grown to hold
	// the first frame when the frame reaches outside it (PIL 9.4 does that).
	canvasW, canvasH         int
	left, top, width, height int  // first frame
	descriptor               int  // offset of the first image descriptor (',')
	descriptorFlags          byte // its packed fields
	imageData                int  // offset just past its local colour table
	transparent              int  // transparent index of the first frame, -1 if none
	lut                      [256][3]uint8
}

// readHeader sniffs data and parses the header of a supported format.
// Errors are *Error. On error the returned header's Format is set when the
// format was recognised.
func readHeader(data []byte) (header, error) {
	if len(data) == 0 {
		return header{}, &Error{Reason: ReasonEmpty, Err: fmt.Errorf("zero bytes")}
	}
	format, ok := Sniff(data)
	if !ok {
		if format != "" {
			return header{Info: Info{Format: format}}, newError(ReasonUnsupported, format, "format %s is not supported", format)
		}
		return header{}, &Error{Reason: ReasonUnknownFormat, Err: fmt.Errorf("not an image: %d bytes starting %s", len(data), describePrefix(data))}
	}
	var (
		h   header
		err error
	)
	switch format {
	case FormatJPEG:
		err = parseJPEG(data, &h)
	case FormatPNG:
		err = parsePNG(data, &h)
	case FormatGIF:
		err = parseGIF(data, &h)
	case FormatBMP:
		err = parseBMP(data, &h)
	case FormatWebP:
		err = parseWebP(data, &h)
	}
	h.Format = format
	if err != nil {
		return h, err
	}
	if h.Width <= 0 || h.Height <= 0 {
		return h, newError(ReasonCorrupt, format, "zero-size image %dx%d", h.Width, h.Height)
	}
	return h, nil
}

// describePrefix shows the first bytes of unrecognised input in hex and as
// quoted text, so a dead letter says what the object actually was.
func describePrefix(data []byte) string {
	n := min(len(data), 8)
	return fmt.Sprintf("% x (%q)", data[:n], data[:n])
}

func truncatedHeader(format string, what string) *Error {
	return newError(ReasonTruncated, format, "data ends inside the %s", what)
}

// JPEG markers (ITU T.81 table B.1).
const (
	markerSOF0  = 0xc0
	markerSOF15 = 0xcf
	markerDHT   = 0xc4
	markerJPG   = 0xc8
	markerDAC   = 0xcc
	markerRST0  = 0xd0
	markerRST7  = 0xd7
	markerSOI   = 0xd8
	markerEOI   = 0xd9
	markerSOS   = 0xda
	markerAPP14 = 0xee
	markerTEM   = 0x01
)

// parseJPEG walks the marker segments up to the first scan, the same way
// libjpeg's jpeg_read_header does: it reads the frame header (SOFn) and
// notes an Adobe APP14 segment, which decides the colour transform.
func parseJPEG(data []byte, h *header) error {
	const f = FormatJPEG
	pos := 2 // past SOI
	sawSOF := false
	for {
		// libjpeg skips (with a warning) bytes that are not a marker, and
		// any number of 0xFF fill bytes before the marker code.
		for pos < len(data) && data[pos] != 0xff {
			pos++
		}
		for pos < len(data) && data[pos] == 0xff {
			pos++
		}
		if pos >= len(data) {
			return truncatedHeader(f, "marker segments before the first scan")
		}
		marker := data[pos]
		pos++
		switch {
		case marker == 0:
			continue // a stuffed 0xFF00 outside a scan: junk
		case marker == markerTEM || (marker >= markerRST0 && marker <= markerRST7):
			continue // standalone markers without a length
		case marker == markerSOI:
			return newError(ReasonCorrupt, f, "second SOI marker at offset %d", pos-2)
		case marker == markerEOI:
			return newError(ReasonCorrupt, f, "EOI at offset %d before any scan", pos-2)
		}
		if pos+2 > len(data) {
			return truncatedHeader(f, fmt.Sprintf("length of marker 0x%02x", marker))
		}
		n := int(binary.BigEndian.Uint16(data[pos:]))
		if n < 2 {
			return newError(ReasonCorrupt, f, "marker 0x%02x at offset %d has length %d", marker, pos-2, n)
		}
		if marker == markerSOS {
			if !sawSOF {
				return newError(ReasonCorrupt, f, "scan at offset %d before the frame header", pos-2)
			}
			h.jpeg.sos = pos - 2
			return nil
		}
		if pos+n > len(data) {
			return truncatedHeader(f, fmt.Sprintf("marker 0x%02x segment", marker))
		}
		seg := data[pos+2 : pos+n]
		switch {
		case marker >= markerSOF0 && marker <= markerSOF15 &&
			marker != markerDHT && marker != markerJPG && marker != markerDAC:
			if sawSOF {
				return newError(ReasonCorrupt, f, "second frame header at offset %d", pos-2)
			}
			sawSOF = true
			if err := parseSOF(marker, seg, h); err != nil {
				return err
			}
		case marker == markerAPP14 && len(seg) >= 12 && bytes.HasPrefix(seg, []byte("Adobe")):
			// libjpeg and Go need the full 12-byte payload to trust it.
			h.jpeg.adobe = true
			h.jpeg.adobeTransform = seg[11]
		}
		pos += n
	}
}

func parseSOF(marker byte, seg []byte, h *header) error {
	const f = FormatJPEG
	if len(seg) < 6 {
		return newError(ReasonCorrupt, f, "frame header of %d bytes", len(seg))
	}
	precision := seg[0]
	h.Height = int(binary.BigEndian.Uint16(seg[1:]))
	h.Width = int(binary.BigEndian.Uint16(seg[3:]))
	nc := int(seg[5])
	if len(seg) < 6+3*nc {
		return newError(ReasonCorrupt, f, "frame header of %d bytes for %d components", len(seg), nc)
	}
	h.jpeg.components = nc
	switch marker {
	case 0xc2, 0xc6, 0xca, 0xce:
		h.jpeg.progressive = true
	}
	switch nc {
	case 1:
		h.Mode = "L"
	case 3:
		h.Mode = "RGB"
	case 4:
		h.Mode = "CMYK"
	default:
		// PIL: "cannot handle N-layer images".
		return newError(ReasonUnsupported, f, "%d-component JPEG", nc)
	}
	switch marker {
	case 0xc3, 0xc7, 0xcb, 0xcf:
		return newError(ReasonUnsupported, f, "lossless JPEG (SOF%d)", marker-markerSOF0)
	}
	if precision != 8 {
		// PIL: "cannot handle 12-bit layers".
		return newError(ReasonUnsupported, f, "%d-bit JPEG", precision)
	}
	return nil
}

// PNG colour types.
const (
	pngGray      = 0
	pngRGB       = 2
	pngPalette   = 3
	pngGrayAlpha = 4
	pngRGBA      = 6
)

// parsePNG reads IHDR and walks the chunk list up to the end of the first
// IDAT run, remembering PLTE. Checksums are left to image/png.
func parsePNG(data []byte, h *header) error {
	const f = FormatPNG
	const ihdrEnd = 8 + 8 + 13 + 4
	if len(data) < 8+8+13 {
		return truncatedHeader(f, "IHDR chunk")
	}
	if string(data[12:16]) != "IHDR" || binary.BigEndian.Uint32(data[8:]) != 13 {
		return newError(ReasonCorrupt, f, "first chunk is %q, not a 13-byte IHDR", data[12:16])
	}
	ihdr := data[16 : 16+13]
	w, ht := binary.BigEndian.Uint32(ihdr[0:]), binary.BigEndian.Uint32(ihdr[4:])
	if w > 1<<31-1 || ht > 1<<31-1 {
		return newError(ReasonCorrupt, f, "dimensions %dx%d exceed the PNG maximum", w, ht)
	}
	h.Width, h.Height = int(w), int(ht)
	depth, ct := ihdr[8], ihdr[9]
	h.png.depth, h.png.colorType = depth, ct
	h.png.interlaced = ihdr[12] == 1
	mode, ok := pngMode(depth, ct)
	if !ok {
		return newError(ReasonCorrupt, f, "invalid colour type %d with bit depth %d", ct, depth)
	}
	h.Mode = mode

	// Walk the chunks to PLTE and the end of the first IDAT run. The walk
	// stops at the first chunk after that run, or at the first incomplete
	// chunk; either way the run is what the decoder gets (an incomplete last
	// IDAT then reads as truncated pixel data).
	pos := ihdrEnd
	inIDAT := false
	for pos+8 <= len(data) {
		n := uint64(binary.BigEndian.Uint32(data[pos:]))
		typ := string(data[pos+4 : pos+8])
		if inIDAT && typ != "IDAT" {
			break
		}
		if uint64(pos)+12+n > uint64(len(data)) {
			break
		}
		end := pos + 12 + int(n)
		switch typ {
		case "IDAT":
			inIDAT = true
		case "PLTE":
			if h.png.palette == nil {
				h.png.palette = data[pos+8 : end-4]
			}
		}
		if typ == "IEND" {
			break
		}
		pos = end
	}
	if inIDAT {
		h.png.idatEnd = pos
	}
	return nil
}

// pngMode is PIL's PngImagePlugin _MODES table: the mode an image opens in.
func pngMode(depth, ct byte) (string, bool) {
	switch ct {
	case pngGray:
		switch depth {
		case 1:
			return "1", true
		case 2, 4, 8:
			return "L", true
		case 16:
			return "I", true
		}
	case pngRGB:
		if depth == 8 || depth == 16 {
			return "RGB", true
		}
	case pngPalette:
		switch depth {
		case 1, 2, 4, 8:
			return "P", true
		}
	case pngGrayAlpha:
		switch depth {
		case 8:
			return "LA", true
		case 16:
			return "RGBA", true // PIL unpacks LA;16B into RGBA
		}
	case pngRGBA:
		if depth == 8 || depth == 16 {
			return "RGBA", true
		}
	}
	return "", false
}

// parseGIF reads the screen descriptor, the extensions before the first
// image and that image's descriptor, as PIL's GifImagePlugin._seek(0) does,
// and builds the colour table PIL will use for the frame.
func parseGIF(data []byte, h *header) error {
	const f = FormatGIF
	g := &h.gif
	if len(data) < 13 {
		return truncatedHeader(f, "logical screen descriptor")
	}
	g.screenWidth = int(binary.LittleEndian.Uint16(data[6:]))
	g.screenHeight = int(binary.LittleEndian.Uint16(data[8:]))
	pos := 13
	var globalTable, localTable []byte
	if flags := data[10]; flags&0x80 != 0 {
		n := 3 << ((flags & 7) + 1)
		if pos+n > len(data) {
			return truncatedHeader(f, "global colour table")
		}
		globalTable = data[pos : pos+n]
		pos += n
	}
	g.transparent = -1
	for {
		if pos >= len(data) {
			return truncatedHeader(f, "blocks before the first image")
		}
		switch data[pos] {
		case '!':
			if pos+2 > len(data) {
				return truncatedHeader(f, "extension block")
			}
			label := data[pos+1]
			p := pos + 2
			first := true
			for {
				if p >= len(data) {
					return truncatedHeader(f, "extension block")
				}
				size := int(data[p])
				if p+1+size > len(data) {
					return truncatedHeader(f, "extension block")
				}
				if size == 0 {
					p++
					break
				}
				if first && label == 0xf9 {
					// Graphic control extension: flags, delay, transparent index.
					if size != 4 {
						return newError(ReasonCorrupt, f, "graphic control extension of %d bytes", size)
					}
					if data[p+1]&1 != 0 {
						g.transparent = int(data[p+4])
					} else {
						g.transparent = -1
					}
				}
				first = false
				p += 1 + size
			}
			pos = p
		case ',':
			if pos+10 > len(data) {
				return truncatedHeader(f, "image descriptor")
			}
			d := data[pos+1 : pos+10]
			g.descriptor = pos
			g.left = int(binary.LittleEndian.Uint16(d[0:]))
			g.top = int(binary.LittleEndian.Uint16(d[2:]))
			g.width = int(binary.LittleEndian.Uint16(d[4:]))
			g.height = int(binary.LittleEndian.Uint16(d[6:]))
			g.descriptorFlags = d[8]
			pos += 10
			if d[8]&0x80 != 0 {
				n := 3 << ((d[8] & 7) + 1)
				if pos+n > len(data) {
					return truncatedHeader(f, "local colour table")
				}
				localTable = data[pos : pos+n]
				pos += n
			}
			g.imageData = pos
			g.canvasW = max(g.screenWidth, g.left+g.width)
			g.canvasH = max(g.screenHeight, g.top+g.height)
			h.Width, h.Height = g.canvasW, g.canvasH
			h.Mode = "P"
			table := localTable
			if table == nil {
				table = globalTable
			}
			if table == nil || isGrayRamp(table) {
				h.Mode = "L"
			}
			// Entries beyond the table keep PIL's default palette, a gray
			// ramp; without any table PIL reads the indices as gray levels.
			for i := range g.lut {
				if 3*i+2 < len(table) {
					g.lut[i] = [3]uint8{table[3*i], table[3*i+1], table[3*i+2]}
				} else {
					g.lut[i] = [3]uint8{uint8(i), uint8(i), uint8(i)}
				}
			}
			return nil
		case ';':
			return newError(ReasonCorrupt, f, "no image before the trailer")
		default:
			// PIL skips unknown bytes between blocks.
			pos++
		}
	}
}

// isGrayRamp reports whether a colour table maps every index i to (i, i, i);
// PIL then opens the GIF as mode "L" (same pixels as the palette gives).
func isGrayRamp(table []byte) bool {
	for i := 0; i+2 < len(table); i += 3 {
		v := byte(i / 3)
		if table[i] != v || table[i+1] != v || table[i+2] != v {
			return false
		}
	}
	return true
}

// parseBMP reads the file and DIB headers and, for palette images, applies
// PIL's BmpImagePlugin rule for the mode: a palette that is exactly the gray
// ramp (or black, white for two colours) opens as "L" (or "1").
func parseBMP(data []byte, h *header) error {
	const f = FormatBMP
	dib := int(binary.LittleEndian.Uint32(data[14:18])) // Sniff checked len >= 18
	var bpp, colors, compression int
	padding := 4
	if dib == 12 { // OS/2 BITMAPCOREHEADER: 16-bit unsigned dimensions
		if len(data) < 14+12 {
			return truncatedHeader(f, "BITMAPCOREHEADER")
		}
		h.Width = int(binary.LittleEndian.Uint16(data[18:]))
		h.Height = int(binary.LittleEndian.Uint16(data[20:]))
		bpp = int(binary.LittleEndian.Uint16(data[24:]))
		padding = 3
	} else {
		if len(data) < 14+40 {
			return truncatedHeader(f, "DIB header")
		}
		w := int32(binary.LittleEndian.Uint32(data[18:]))
		ht := int32(binary.LittleEndian.Uint32(data[22:]))
		if ht < 0 {
			ht = -ht // top-down rows
		}
		if w < 0 || ht < 0 { // ht < 0 still when it was math.MinInt32
			return newError(ReasonCorrupt, f, "negative size %dx%d", w, ht)
		}
		h.Width, h.Height = int(w), int(ht)
		bpp = int(binary.LittleEndian.Uint16(data[28:]))
		compression = int(binary.LittleEndian.Uint32(data[30:]))
		colors = int(binary.LittleEndian.Uint32(data[46:]))
	}
	switch {
	case bpp <= 8:
		if colors <= 0 || colors > 1<<bpp {
			colors = 1 << bpp
		}
		h.Mode = "P"
		pal := 14 + dib
		if pal+padding*colors <= len(data) && isGrayPalette(data[pal:], colors, padding) {
			h.Mode = "L"
			if colors == 2 {
				h.Mode = "1"
			}
		}
	case bpp == 32 && compression == 3 && dib >= 56 && len(data) >= 14+56 && binary.LittleEndian.Uint32(data[14+52:]) != 0:
		h.Mode = "RGBA" // BI_BITFIELDS with an alpha mask
	default:
		h.Mode = "RGB"
	}
	return nil
}

// isGrayPalette is PIL's BMP greyscale test on a BGR(X) colour table.
func isGrayPalette(p []byte, colors, padding int) bool {
	for i := 0; i < colors; i++ {
		v := byte(i)
		if colors == 2 {
			v = byte(255 * i)
		}
		e := p[i*padding : i*padding+3]
		if e[0] != v || e[1] != v || e[2] != v {
			return false
		}
	}
	return true
}

// parseWebP reads the first RIFF chunk: a VP8 frame header, a VP8L header
// or the VP8X canvas (which image/webp checks against the frame inside).
func parseWebP(data []byte, h *header) error {
	const f = FormatWebP
	if len(data) < 20 {
		return truncatedHeader(f, "first RIFF chunk")
	}
	payload := data[20:min(len(data), 20+10)]
	switch string(data[12:16]) {
	case "VP8 ":
		if len(payload) < 10 {
			return truncatedHeader(f, "VP8 frame header")
		}
		if payload[0]&1 != 0 {
			return newError(ReasonCorrupt, f, "first VP8 frame is not a key frame")
		}
		if payload[3] != 0x9d || payload[4] != 0x01 || payload[5] != 0x2a {
			return newError(ReasonCorrupt, f, "bad VP8 start code % x", payload[3:6])
		}
		h.Width = int(binary.LittleEndian.Uint16(payload[6:]) & 0x3fff)
		h.Height = int(binary.LittleEndian.Uint16(payload[8:]) & 0x3fff)
		h.Mode = "RGB"
	case "VP8L":
		if len(payload) < 5 {
			return truncatedHeader(f, "VP8L header")
		}
		if payload[0] != 0x2f {
			return newError(ReasonCorrupt, f, "bad VP8L signature 0x%02x", payload[0])
		}
		bits := binary.LittleEndian.Uint32(payload[1:])
		h.Width = int(bits&0x3fff) + 1
		h.Height = int(bits>>14&0x3fff) + 1
		h.Mode = "RGB"
		if bits>>28&1 != 0 {
			h.Mode = "RGBA"
		}
	case "VP8X":
		if len(payload) < 10 {
			return truncatedHeader(f, "VP8X header")
		}
		flags := payload[0]
		h.Width = int(uint32(payload[4])|uint32(payload[5])<<8|uint32(payload[6])<<16) + 1
		h.Height = int(uint32(payload[7])|uint32(payload[8])<<8|uint32(payload[9])<<16) + 1
		h.Mode = "RGB"
		if flags&0x10 != 0 {
			h.Mode = "RGBA"
		}
		if flags&0x02 != 0 {
			return newError(ReasonUnsupported, f, "animated WebP")
		}
	}
	return nil
}
