package decode

import (
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"strings"

	"golang.org/x/image/bmp"
)

// Reason classifies why an image could not be decoded. Its string value is
// the reason code written to the pipeline's dead-letter file. A Reason is
// itself an error so that errors.Is(err, ReasonTruncated) works on any error
// returned by this package.
type Reason string

// Reasons for refusing an image.
const (
	// ReasonEmpty: the input has zero bytes.
	ReasonEmpty Reason = "empty"
	// ReasonUnknownFormat: the bytes are not an image this package knows
	// (random bytes, a text or HTML file, ...).
	ReasonUnknownFormat Reason = "unknown_format"
	// ReasonTruncated: the data ends before the image does.
	ReasonTruncated Reason = "truncated"
	// ReasonCorrupt: the data is malformed (bad header, bad checksum, bad
	// entropy-coded data, zero-size image, ...).
	ReasonCorrupt Reason = "corrupt"
	// ReasonTooLarge: the header announces more pixels than Options.MaxPixels
	// (a decompression bomb, PIL's DecompressionBombError).
	ReasonTooLarge Reason = "too_large"
	// ReasonUnsupported: a recognised format or variant that is not decoded
	// (TIFF, 12-bit or arithmetic-coded JPEG on the Go path, animated WebP,
	// ...).
	ReasonUnsupported Reason = "unsupported"
)

// Error implements error so that a Reason can be the target of errors.Is;
// it is the bare reason code, so a Reason prints as what the dead-letter
// file records.
func (r Reason) Error() string { return string(r) }

// Error is the error returned for every image this package refuses.
type Error struct {
	// Reason classifies the failure.
	Reason Reason
	// Format is the sniffed format ("jpeg", "png", ...), or "" when the
	// content was not recognised.
	Format string
	// Err carries the detail: what was found, or the underlying decoder
	// error.
	Err error
}

// Error formats as "decode: <reason>: format <f>: <detail>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("decode: ")
	b.WriteString(string(e.Reason))
	if e.Format != "" {
		b.WriteString(": format ")
		b.WriteString(e.Format)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying detail error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is this error's Reason, so that
// errors.Is(err, decode.ReasonTooLarge) classifies wrapped errors.
func (e *Error) Is(target error) bool {
	r, ok := target.(Reason)
	return ok && r == e.Reason
}

// ReasonOf returns the Reason of the first *Error in err's chain, or "" when
// err is nil or did not come from this package.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// newError builds an *Error with a formatted detail message.
func newError(reason Reason, format, msg string, args ...any) *Error {
	return &Error{Reason: reason, Format: format, Err: fmt.Errorf(msg, args...)}
}

// classify wraps an error from a standard-library or x/image decoder into an
// *Error, choosing the Reason from the error's type or, for decoders that
// only return formatted strings (image/gif, x/image/webp), its text.
func classify(format string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	reason := ReasonCorrupt
	var (
		jpegUnsupported jpeg.UnsupportedError
		pngUnsupported  png.UnsupportedError
	)
	msg := err.Error()
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		strings.Contains(msg, "unexpected EOF"),
		strings.Contains(msg, "not enough image data"), // image/gif's errNotEnough
		strings.Contains(msg, "not enough pixel data"): // image/png: IDAT data ran out
		reason = ReasonTruncated
	case errors.As(err, &jpegUnsupported), errors.As(err, &pngUnsupported),
		errors.Is(err, bmp.ErrUnsupported),
		strings.Contains(msg, "not implemented"), strings.Contains(msg, "unsupported"):
		reason = ReasonUnsupported
	}
	return &Error{Reason: reason, Format: format, Err: err}
}
