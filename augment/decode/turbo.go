//go:build cgo && turbojpeg

package decode

/*
#cgo LDFLAGS: -lturbojpeg
#include <turbojpeg.h>
*/
import "C"

import (
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/sslight-go/sslight/augment"
)

// JPEGBackend names the JPEG decoder compiled in: "go" (image/jpeg) or
// "libjpeg-turbo" (with -tags turbojpeg and cgo).
const JPEGBackend = "libjpeg-turbo"

// turboJPEG reports whether decodeJPEG uses libjpeg-turbo.
const turboJPEG = true

// turboFlags are the libjpeg settings PIL 9.4 decodes with: the accurate
// integer IDCT (JDCT_ISLOW, also TurboJPEG's decompression default) and
// fancy upsampling (no TJFLAG_FASTUPSAMPLE). No scaling is requested, so no
// DCT-domain downscaling happens. TJFLAG_LIMITSCANS refuses progressive
// CPU bombs (checkJPEGStream already does; this is defence in depth).
const turboFlags = C.TJFLAG_ACCURATEDCT | C.TJFLAG_LIMITSCANS

// tjDecoder owns one TurboJPEG decompressor. A handle must not be used by
// two goroutines at once, so handles are pooled; when the pool drops one,
// its cleanup destroys the C object.
type tjDecoder struct {
	h C.tjhandle
}

var tjPool = sync.Pool{New: func() any {
	h := C.tjInitDecompress()
	if h == nil {
		return (*tjDecoder)(nil)
	}
	d := &tjDecoder{h: h}
	runtime.AddCleanup(d, func(h C.tjhandle) { C.tjDestroy(h) }, h)
	return d
}}

// decodeJPEGTurbo decodes straight into dst's buffer (TJPF_RGB with dst's
// stride: no intermediate copy). CMYK and YCCK images are decoded to
// TJPF_CMYK in a scratch buffer and converted as PIL does: "CMYK;I"
// inversion, then cmyk2rgb.
func decodeJPEGTurbo(dst *augment.Image, data []byte, h *header) error {
	d := tjPool.Get().(*tjDecoder)
	if d == nil {
		return newError(ReasonUnsupported, FormatJPEG, "libjpeg-turbo: tjInitDecompress failed: %s", C.GoString(C.tjGetErrorStr2(nil)))
	}
	defer tjPool.Put(d)
	w, ht := h.Width, h.Height
	dst.Reset(w, ht)
	src := (*C.uchar)(unsafe.Pointer(&data[0]))
	if h.jpeg.components == 4 {
		cmyk := make([]byte, 4*w*ht)
		rc := C.tjDecompress2(d.h, src, C.ulong(len(data)), (*C.uchar)(unsafe.Pointer(&cmyk[0])),
			C.int(w), C.int(4*w), C.int(ht), C.TJPF_CMYK, turboFlags)
		if err := d.check(rc); err != nil {
			return err
		}
		for y := 0; y < ht; y++ {
			cmykRowToRGB(dst.Row(y), cmyk[4*w*y:4*w*(y+1)], true)
		}
		return nil
	}
	rc := C.tjDecompress2(d.h, src, C.ulong(len(data)), (*C.uchar)(unsafe.Pointer(&dst.Pix[0])),
		C.int(w), C.int(dst.Stride), C.int(ht), C.TJPF_RGB, turboFlags)
	return d.check(rc)
}

// check turns a TurboJPEG status into an *Error. Warnings are not errors:
// PIL silences libjpeg's warnings ("Corrupt JPEG data: N extraneous bytes")
// and keeps the pixels, and the one warning that matters, a premature end of
// data, cannot happen here because checkJPEGStream refused streams without
// EOI.
func (d *tjDecoder) check(rc C.int) error {
	if rc == 0 || C.tjGetErrorCode(d.h) == C.TJERR_WARNING {
		return nil
	}
	msg := C.GoString(C.tjGetErrorStr2(d.h))
	reason := ReasonCorrupt
	switch {
	case strings.Contains(msg, "Premature end"):
		reason = ReasonTruncated
	case strings.Contains(msg, "nsupported"), strings.Contains(msg, "not supported"),
		strings.Contains(msg, "more than"): // TJFLAG_LIMITSCANS
		reason = ReasonUnsupported
	}
	return newError(reason, FormatJPEG, "libjpeg-turbo: %s", msg)
}
