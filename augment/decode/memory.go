package decode

// MemoryEstimate reads only the header of an image and returns its Info
// with an upper bound of the bytes decoding it holds at the peak: the
// encoded data itself, the RGB result (3 bytes a pixel) and the decoder's
// own image of the pixels, whose size the format and mode decide (a PNG of
// 8-bit RGB decodes to 4 bytes a pixel, of 16-bit samples to 8, an
// interlaced one holds a pass image besides; a progressive JPEG keeps 2
// bytes of coefficients per pixel and component). Images over opts'
// pixel limit fail here exactly as DecodeInto fails them
// (ReasonTooLarge), so a caller that budgets memory refuses a
// decompression bomb before it waits for memory. It allocates nothing
// proportional to the image.
func MemoryEstimate(data []byte, opts Options) (Info, int64, error) {
	h, err := readHeader(data)
	if err != nil {
		return h.Info, 0, err
	}
	if err := checkPixels(&h, opts.maxPixels()); err != nil {
		return h.Info, 0, err
	}
	px := int64(h.Width) * int64(h.Height)
	return h.Info, decoderOverhead + int64(len(data)) + px*(3+decoderBytesPerPixel(&h)), nil
}

// decoderOverhead covers what a decoder allocates whatever the image size:
// Huffman and zlib tables, row buffers, readers (image/png's zlib reader
// alone is about 40 KB).
const decoderOverhead = 256 << 10

// decoderBytesPerPixel bounds what the format's decoder allocates per
// pixel besides the RGB result.
func decoderBytesPerPixel(h *header) int64 {
	switch h.Format {
	case FormatJPEG:
		// Component planes (image/jpeg; libjpeg-turbo's CMYK scratch),
		// plus the coefficient buffers a progressive scan keeps.
		c := int64(max(h.jpeg.components, 1))
		if h.jpeg.progressive {
			return 3 * c
		}
		return c
	case FormatPNG:
		var b int64
		switch h.png.colorType {
		case pngGray, pngPalette:
			b = 1 // image.Gray, image.Paletted
			if h.png.depth == 16 {
				b = 2 // image.Gray16
			}
		default: // RGB, RGBA, gray+alpha: (N)RGBA, or (N)RGBA64 at 16 bits
			b = 4
			if h.png.depth == 16 {
				b = 8
			}
		}
		if h.png.interlaced {
			b *= 2
		}
		return b
	case FormatGIF:
		return 1 // the paletted frame
	default: // BMP and WebP: (N)RGBA at worst
		return 4
	}
}
