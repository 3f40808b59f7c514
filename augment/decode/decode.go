package decode

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"

	"github.com/sslight-go/sslight/augment"
)

// DefaultMaxPixels is PIL 9.4's decompression-bomb limit, 2 ×
// Image.MAX_IMAGE_PIXELS (= 2 × 1024³/4/3): above it PIL raises
// DecompressionBombError instead of decoding.
const DefaultMaxPixels int64 = 2 * (1024 * 1024 * 1024 / 4 / 3)

// Options configures decoding. The zero value is PIL's behaviour.
type Options struct {
	// MaxPixels is the largest width×height decoded; larger images fail
	// with ReasonTooLarge before any pixel memory is allocated. 0 means
	// DefaultMaxPixels; a negative value disables the check.
	MaxPixels int64
}

func (o Options) maxPixels() int64 {
	if o.MaxPixels == 0 {
		return DefaultMaxPixels
	}
	return o.MaxPixels
}

// Info describes an image as read from its header.
type Info struct {
	// Format is one of the Format constants.
	Format string
	// Width and Height in pixels (for GIF, the size PIL gives the image:
	// the logical screen, grown to contain the first frame).
	Width, Height int
	// Mode is the PIL mode the image opens in before convert("RGB"): "1",
	// "L", "LA", "I" (16-bit gray PNG), "P", "RGB", "RGBA" or "CMYK".
	Mode string
}

// DecodeConfig reads only the header of an image: its format, size and PIL
// mode. It allocates nothing proportional to the image and does not apply a
// pixel limit (Decode does); it does refuse unknown formats, malformed
// headers and zero-size images.
func DecodeConfig(data []byte) (Info, error) {
	h, err := readHeader(data)
	return h.Info, err
}

// Decode decodes an image of any supported format, recognised by content,
// into a new RGB image with the pixel values of PIL's
// Image.open(f).convert("RGB"). Every error is an *Error.
func Decode(data []byte, opts Options) (*augment.Image, Info, error) {
	img := new(augment.Image)
	info, err := DecodeInto(img, data, opts)
	if err != nil {
		return nil, info, err
	}
	return img, info, nil
}

// DecodeInto is Decode writing into dst, whose pixel buffer is reused when
// it is large enough (dst is reset to the image's size with a tight stride).
// On error dst's contents are unspecified.
func DecodeInto(dst *augment.Image, data []byte, opts Options) (Info, error) {
	if dst == nil {
		panic("decode.DecodeInto: nil destination image")
	}
	h, err := readHeader(data)
	if err != nil {
		return h.Info, err
	}
	if err := checkPixels(&h, opts.maxPixels()); err != nil {
		return h.Info, err
	}
	switch h.Format {
	case FormatJPEG:
		err = decodeJPEG(dst, data, &h)
	case FormatPNG:
		err = decodePNG(dst, data, &h)
	case FormatGIF:
		err = decodeGIF(dst, data, &h)
	case FormatBMP:
		err = decodeBMP(dst, data, &h)
	case FormatWebP:
		err = decodeWebP(dst, data, &h)
	default:
		panic("decode: readHeader returned unhandled format " + h.Format)
	}
	return h.Info, err
}

// checkPixels is the decompression-bomb guard, applied to header dimensions
// before any decoder allocates.
func checkPixels(h *header, limit int64) error {
	px := int64(h.Width) * int64(h.Height)
	if limit > 0 && px > limit {
		return newError(ReasonTooLarge, h.Format, "%dx%d = %d px exceeds limit %d", h.Width, h.Height, px, limit)
	}
	// Even without a limit the RGB buffer (and the decoders' 8-byte-per-pixel
	// buffers) must be addressable.
	if px > (1<<62)/8 || int64(int(8*px)) != 8*px {
		return newError(ReasonTooLarge, h.Format, "%dx%d = %d px cannot be addressed", h.Width, h.Height, px)
	}
	return nil
}

// runDecoder calls a standard-library or x/image decoder, turning its errors
// into *Error and a panic on hostile input into ReasonCorrupt, so one bad
// object can never take a pipeline worker down.
func runDecoder(format string, decode func() (image.Image, error)) (img image.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, newError(ReasonCorrupt, format, "decoder panicked: %v", r)
		}
	}()
	img, err = decode()
	if err != nil {
		return nil, classify(format, err)
	}
	return img, nil
}

// checkBounds makes sure the decoder produced the image the header
// announced (the pixel limit was checked against the header).
func checkBounds(format string, img image.Image, w, h int) error {
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		return newError(ReasonCorrupt, format, "decoded %dx%d image, header says %dx%d", b.Dx(), b.Dy(), w, h)
	}
	return nil
}

// maxProgressiveScans is libjpeg-turbo's TJFLAG_LIMITSCANS bound. A
// progressive JPEG with thousands of tiny scans makes every scan walk the
// whole image (a CPU bomb), so both back ends refuse it.
const maxProgressiveScans = 500

// checkJPEGStream looks at the entropy-coded part of a JPEG without decoding
// it. A JPEG that has no EOI marker after its first scan was cut short:
// both decoders would otherwise make up the missing rows (libjpeg pads with
// gray and only warns). Both back ends use this one rule, so they agree on
// what "truncated" means. For progressive images it also counts the scans.
func checkJPEGStream(data []byte, h *header) error {
	scan := data[h.jpeg.sos:]
	if !h.jpeg.progressive {
		if bytes.LastIndex(scan, []byte{0xff, markerEOI}) < 0 {
			return newError(ReasonTruncated, FormatJPEG, "no EOI marker after the scan data (%d bytes)", len(scan))
		}
		return nil
	}
	scans, eoi := 0, false
	for i := 0; i < len(scan) && !eoi; {
		j := bytes.IndexByte(scan[i:], 0xff)
		if j < 0 || i+j+1 >= len(scan) {
			break
		}
		i += j + 1
		switch scan[i] {
		case markerSOS:
			scans++
		case markerEOI:
			eoi = true
		}
	}
	if !eoi {
		return newError(ReasonTruncated, FormatJPEG, "no EOI marker after %d progressive scans", scans)
	}
	if scans > maxProgressiveScans {
		return newError(ReasonUnsupported, FormatJPEG, "progressive JPEG with %d scans (limit %d)", scans, maxProgressiveScans)
	}
	return nil
}

// adobeCMYK is an APP14 segment declaring "transform 0" (plain CMYK).
// libjpeg treats a 4-component JPEG without APP14 as plain CMYK, and PIL
// reads every CMYK JPEG with Adobe polarity; image/jpeg refuses such files,
// so the segment is spliced in to make it read them the same way.
var adobeCMYK = []byte{0xff, markerAPP14, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0}

func decodeJPEG(dst *augment.Image, data []byte, h *header) error {
	if err := checkJPEGStream(data, h); err != nil {
		return err
	}
	if turboJPEG {
		return decodeJPEGTurbo(dst, data, h)
	}
	return decodeJPEGGo(dst, data, h)
}

// decodeJPEGGo decodes with image/jpeg and converts like libjpeg + PIL.
func decodeJPEGGo(dst *augment.Image, data []byte, h *header) error {
	var r io.Reader = bytes.NewReader(data)
	if h.jpeg.components == 4 && !h.jpeg.adobe {
		r = io.MultiReader(bytes.NewReader(data[:2]), bytes.NewReader(adobeCMYK), bytes.NewReader(data[2:]))
	}
	img, err := runDecoder(FormatJPEG, func() (image.Image, error) { return jpeg.Decode(r) })
	if err != nil {
		return err
	}
	if err := checkBounds(FormatJPEG, img, h.Width, h.Height); err != nil {
		return err
	}
	switch m := img.(type) {
	case *image.YCbCr:
		return jpegYCbCrToRGB(dst, m)
	case *image.Gray:
		grayToRGB(dst, m)
	case *image.RGBA: // Adobe transform 0 / "RGB" component ids
		rgba8ToRGB(dst, m.Pix, m.Stride, m.Rect)
	case *image.CMYK: // already in PIL's polarity (image/jpeg inverts like "CMYK;I")
		cmykToRGB(dst, m)
	default:
		return newError(ReasonUnsupported, FormatJPEG, "unexpected decoded type %T", img)
	}
	return nil
}

// iendChunk is a complete IEND chunk, CRC included.
var iendChunk = []byte{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82}

func decodePNG(dst *augment.Image, data []byte, h *header) error {
	var r io.Reader = bytes.NewReader(data)
	if h.png.idatEnd > 0 {
		// PIL stops reading once it has the pixels; image/png insists on
		// IEND. Ending the stream right after the IDAT run makes a missing or
		// damaged tail (IEND, trailing text chunks) as harmless as in PIL.
		r = io.MultiReader(bytes.NewReader(data[:h.png.idatEnd]), bytes.NewReader(iendChunk))
	}
	img, err := runDecoder(FormatPNG, func() (image.Image, error) { return png.Decode(r) })
	if err != nil {
		return err
	}
	if err := checkBounds(FormatPNG, img, h.Width, h.Height); err != nil {
		return err
	}
	clip16 := h.Mode == "I" // PIL's i2rgb clips the 16-bit value to 255
	switch m := img.(type) {
	case *image.Gray:
		grayToRGB(dst, m)
	case *image.Gray16:
		gray16ClipToRGB(dst, m)
	case *image.RGBA:
		rgba8ToRGB(dst, m.Pix, m.Stride, m.Rect)
	case *image.NRGBA:
		rgba8ToRGB(dst, m.Pix, m.Stride, m.Rect)
	case *image.RGBA64:
		rgba16ToRGB(dst, m.Pix, m.Stride, m.Rect, clip16)
	case *image.NRGBA64:
		rgba16ToRGB(dst, m.Pix, m.Stride, m.Rect, clip16)
	case *image.Paletted:
		var lut [256][3]uint8
		lutFromBytes(&lut, h.png.palette)
		palettedToRGB(dst, m, &lut)
	default:
		return newError(ReasonUnsupported, FormatPNG, "unexpected decoded type %T", img)
	}
	return nil
}

// decodeGIF decodes the first frame. image/gif is given a rewritten stream
// (header, first image descriptor with a 256-entry local table, image
// data) so that it accepts what PIL accepts: a frame larger than the
// logical screen, no colour table at all, indices beyond the table.
// The colours then come from the table PIL would use, not image/gif's
// (which blanks the transparent entry).
func decodeGIF(dst *augment.Image, data []byte, h *header) error {
	g := &h.gif
	var screen [13]byte
	copy(screen[:], data[:13])
	screen[6], screen[7] = byte(g.canvasW), byte(g.canvasW>>8)
	screen[8], screen[9] = byte(g.canvasH), byte(g.canvasH>>8)
	screen[10] &^= 0x80 // no global colour table
	var desc [10]byte
	copy(desc[:], data[g.descriptor:g.descriptor+10])
	desc[9] = desc[9]&0x40 | 0x80 | 7 // keep interlace; local table of 256 entries
	var table [768]byte
	for i, c := range g.lut {
		table[3*i], table[3*i+1], table[3*i+2] = c[0], c[1], c[2]
	}
	r := io.MultiReader(bytes.NewReader(screen[:]), bytes.NewReader(desc[:]),
		bytes.NewReader(table[:]), bytes.NewReader(data[g.imageData:]))
	img, err := runDecoder(FormatGIF, func() (image.Image, error) { return gif.Decode(r) })
	if err != nil {
		return err
	}
	m, ok := img.(*image.Paletted)
	if !ok {
		return newError(ReasonUnsupported, FormatGIF, "unexpected decoded type %T", img)
	}
	if want := image.Rect(g.left, g.top, g.left+g.width, g.top+g.height); m.Rect != want {
		return newError(ReasonCorrupt, FormatGIF, "decoded frame %v, descriptor says %v", m.Rect, want)
	}
	gifToRGB(dst, m, h)
	return nil
}

func decodeBMP(dst *augment.Image, data []byte, h *header) error {
	img, err := runDecoder(FormatBMP, func() (image.Image, error) { return bmp.Decode(bytes.NewReader(data)) })
	if err != nil {
		return err
	}
	if err := checkBounds(FormatBMP, img, h.Width, h.Height); err != nil {
		return err
	}
	switch m := img.(type) {
	case *image.RGBA:
		rgba8ToRGB(dst, m.Pix, m.Stride, m.Rect)
	case *image.NRGBA:
		rgba8ToRGB(dst, m.Pix, m.Stride, m.Rect)
	case *image.Paletted:
		var lut [256][3]uint8
		lutFromPalette(&lut, m.Palette)
		palettedToRGB(dst, m, &lut)
	default:
		return newError(ReasonUnsupported, FormatBMP, "unexpected decoded type %T", img)
	}
	return nil
}

func decodeWebP(dst *augment.Image, data []byte, h *header) error {
	img, err := runDecoder(FormatWebP, func() (image.Image, error) { return webp.Decode(bytes.NewReader(data)) })
	if err != nil {
		return err
	}
	if err := checkBounds(FormatWebP, img, h.Width, h.Height); err != nil {
		return err
	}
	switch m := img.(type) {
	case *image.YCbCr:
		webpYCbCrToRGB(dst, m)
	case *image.NYCbCrA: // alpha is dropped, RGB as libwebp computes it
		webpYCbCrToRGB(dst, &m.YCbCr)
	case *image.NRGBA: // lossless
		rgba8ToRGB(dst, m.Pix, m.Stride, m.Rect)
	default:
		return newError(ReasonUnsupported, FormatWebP, "unexpected decoded type %T", img)
	}
	return nil
}

// lutFromBytes builds a palette lookup table from packed RGB triplets;
// missing entries take PIL's default palette entry (i, i, i).
func lutFromBytes(lut *[256][3]uint8, rgb []byte) {
	for i := range lut {
		if 3*i+2 < len(rgb) {
			lut[i] = [3]uint8{rgb[3*i], rgb[3*i+1], rgb[3*i+2]}
		} else {
			lut[i] = [3]uint8{uint8(i), uint8(i), uint8(i)}
		}
	}
}

// lutFromPalette builds a lookup table from a decoded palette, reading the
// stored (non-premultiplied) colour of each entry.
func lutFromPalette(lut *[256][3]uint8, p color.Palette) {
	for i := range lut {
		c := [3]uint8{uint8(i), uint8(i), uint8(i)}
		if i < len(p) {
			switch v := p[i].(type) {
			case color.RGBA:
				c = [3]uint8{v.R, v.G, v.B}
			case color.NRGBA:
				c = [3]uint8{v.R, v.G, v.B}
			default:
				n := color.NRGBAModel.Convert(v).(color.NRGBA)
				c = [3]uint8{n.R, n.G, n.B}
			}
		}
		lut[i] = c
	}
}

// String makes Info print compactly in logs and test failures.
func (i Info) String() string {
	return fmt.Sprintf("%s %dx%d %s", i.Format, i.Width, i.Height, i.Mode)
}
