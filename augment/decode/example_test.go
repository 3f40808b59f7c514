package decode_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
)

// Decoding by content: this file is a PNG although it is named .JPEG, as
// some ImageNet files are.
func ExampleDecode() {
	data, err := os.ReadFile("testdata/fixtures/png_disguised.JPEG")
	if err != nil {
		panic(err)
	}
	img, info, err := decode.Decode(data, decode.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Format, info.Mode, img.W, img.H, len(img.Pix))
	// Output: png RGB 45 31 4185
}

// A pipeline worker reuses one buffer per goroutine and turns failures into
// dead-letter reasons.
func ExampleDecodeInto() {
	var buf augment.Image
	for _, name := range []string{"jpeg_420.jpg", "truncated.jpg", "bomb.png", "text.JPEG"} {
		data, err := os.ReadFile("testdata/fixtures/" + name)
		if err != nil {
			panic(err)
		}
		info, err := decode.DecodeInto(&buf, data, decode.Options{})
		switch {
		case err == nil:
			fmt.Printf("%s: %v\n", name, info)
		case errors.Is(err, decode.ReasonTooLarge):
			fmt.Printf("%s: dead letter %q (bomb)\n", name, decode.ReasonOf(err))
		default:
			fmt.Printf("%s: dead letter %q\n", name, decode.ReasonOf(err))
		}
	}
	// Output:
	// jpeg_420.jpg: jpeg 45x31 RGB
	// truncated.jpg: dead letter "truncated"
	// bomb.png: dead letter "too_large" (bomb)
	// text.JPEG: dead letter "unknown_format"
}

func ExampleSniff() {
	for _, b := range [][]byte{
		[]byte("\x89PNG\r\n\x1a\n..."),
		[]byte("II*\x00..."),
		[]byte("<html>"),
	} {
		format, ok := decode.Sniff(b)
		fmt.Printf("%q %v\n", format, ok)
	}
	// Output:
	// "png" true
	// "tiff" false
	// "" false
}
