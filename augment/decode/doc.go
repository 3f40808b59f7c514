// Package decode turns the bytes of an image file into an [augment.Image]
// (8-bit interleaved RGB) with the pixel values PIL 9.4 produces for
// Image.open(f).convert("RGB"), which is what the SSLight reference feeds its
// augmentation pipeline.
//
// The format is chosen by content, never by file name: ImageNet ships PNGs and
// CMYK JPEGs named .JPEG. Supported are JPEG (baseline, progressive, grayscale,
// CMYK and YCCK), PNG (every colour type and bit depth, interlaced or not), GIF
// (first frame), BMP and WebP (lossy and lossless).
//
// # Safety
//
// The dimensions are read from the header before anything is decoded, and an
// image with more pixels than [Options.MaxPixels] (by default PIL's
// decompression-bomb limit, 2·Image.MAX_IMAGE_PIXELS = 178,956,970) is refused
// without allocating it. Every failure is an [*Error] carrying a [Reason] that
// the pipeline writes to its dead-letter file; errors.Is(err, ReasonTruncated)
// and friends classify it.
//
// # Conversion to RGB, as PIL does it
//
//   - Alpha is dropped, not composited (RGBA, LA, tRNS, palette alpha).
//   - Palette images take their palette colours; indices beyond the palette
//     take PIL's default palette entry (i, i, i).
//   - 16-bit RGB and gray+alpha PNGs keep the high byte of each sample.
//   - 16-bit grayscale PNGs open in PIL as mode "I" and convert("RGB") clips
//     each value to 255 (so most pixels are white); that quirk is reproduced
//     because it is what the reference trains on.
//   - CMYK JPEGs are read with Adobe polarity (PIL always uses rawmode
//     "CMYK;I") and converted with PIL's cmyk2rgb:
//     R = 255 − K' − C·(255 − K')/255 with PIL's rounding.
//   - JPEG: YCbCr is converted with libjpeg's integer tables and "fancy"
//     (triangle-filter) chroma upsampling, as libjpeg-turbo does for PIL.
//   - WebP lossy: libwebp's fixed-point BT.601 conversion with its fancy
//     upsampler.
//   - GIF: the first frame placed on the logical screen; the rest of the
//     screen holds the transparent index (if any) or index 0, as PIL 9.4 fills
//     it.
//
// # Truncation
//
// A JPEG without an EOI marker after its scans, a PNG whose IDAT data runs
// out and a GIF whose first frame is cut short are ReasonTruncated, as PIL
// reports "image file is truncated" for them (PIL is run without
// LOAD_TRUNCATED_IMAGES). Data after the pixels is not needed: a PNG
// without IEND decodes, as in PIL.
//
// # JPEG back ends
//
// By default JPEGs are decoded by Go's image/jpeg, followed by libjpeg's own
// chroma upsampling and colour conversion. image/jpeg's IDCT differs
// slightly from libjpeg's ISLOW IDCT, so pixels may differ from PIL by up to
// 3 levels (measured over 76 photos: 2.6% of samples differ, none by more
// than 3). image/jpeg cannot read arithmetic-coded JPEGs
// (ReasonUnsupported on this path). Built with -tags turbojpeg (and cgo),
// JPEGs go through libjpeg-turbo's TurboJPEG API instead, with the settings
// PIL uses (accurate integer IDCT, fancy upsampling, no DCT scaling); that
// path matches PIL bit for bit and is several times faster. [JPEGBackend]
// reports which one is compiled in.
package decode
