//go:build !(cgo && turbojpeg)

package decode

import "github.com/sslight-go/sslight/augment"

// JPEGBackend names the JPEG decoder compiled in: "go" (image/jpeg) or
// "libjpeg-turbo" (with -tags turbojpeg and cgo).
const JPEGBackend = "go"

// turboJPEG reports whether decodeJPEG uses libjpeg-turbo.
const turboJPEG = false

func decodeJPEGTurbo(dst *augment.Image, data []byte, h *header) error {
	panic("decode: libjpeg-turbo back end not compiled in (build with -tags turbojpeg)")
}
