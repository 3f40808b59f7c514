package shard

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/sinks/storage"
)

// makeImageSample is image sample i of h×w with pixel()'s values.
func makeImageSample(i, h, w int) *Sample {
	pix := make([]uint8, h*w*Channels)
	for j := range pix {
		pix[j] = pixel(i, 2, j)
	}
	return &Sample{
		Key:   fmt.Sprintf("img_%05d", i),
		Meta:  []byte(fmt.Sprintf(`{"uri":"gs://bucket/train/%05d.JPEG","label":%d}`, i, i%10)),
		Image: Image{Height: h, Width: w, Pix: pix},
	}
}

// TestImageSamplesRoundTrip writes image samples of several sizes between
// views samples in one shard and reads every one back, members in the
// documented order with the documented .npy header.
func TestImageSamplesRoundTrip(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	w, err := Create(ctx, out, testHash, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []*Sample{makeImageSample(0, 256, 341), makeSample(1, small), makeImageSample(2, 1, 1), makeImageSample(3, 5, 2)}
	for _, s := range want {
		if err := w.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	info, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}

	// The tar as a WebDataset reader sees it: <key>.json then
	// <key>.image.npy, whose header is numpy's for uint8 (H, W, 3).
	raw := readShardFile(t, info.URI)
	tr := tar.NewReader(bytes.NewReader(raw))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Name == "img_00000.image.npy" {
			body, _ := io.ReadAll(tr)
			wantHead := "{'descr': '|u1', 'fortran_order': False, 'shape': (256, 341, 3), }"
			if !bytes.HasPrefix(body, []byte("\x93NUMPY")) || !strings.Contains(string(body[:128]), wantHead) {
				t.Errorf("image.npy header %q, want numpy's %q", body[:min(len(body), 128)], wantHead)
			}
			if head := len(body) - 256*341*3; head <= 0 || head%64 != 0 {
				t.Errorf("image.npy is %d bytes: a header of %d, want a multiple of 64 before the 256·341·3 pixels", len(body), head)
			}
		}
	}
	wantNames := []string{"img_00000.json", "img_00000.image.npy", "n01440764_00001.json", "n01440764_00001.global.npy",
		"n01440764_00001.local.npy", "img_00002.json", "img_00002.image.npy", "img_00003.json", "img_00003.image.npy"}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("members %v\nwant    %v", names, wantNames)
	}

	r, err := Open(ctx, info.URI, &Expect{Bytes: info.Bytes, CRC32C: info.CRC32C})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var s Sample // reused: an image sample after a views sample and back
	for i := 0; ; i++ {
		err := r.Next(&s)
		if err == io.EOF {
			if i != len(want) {
				t.Errorf("read %d samples, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ws := want[i]
		if s.IsImage() != ws.IsImage() || s.Key != ws.Key || !bytes.Equal(s.Meta, ws.Meta) {
			t.Fatalf("sample %d: key %s image %v, want %s image %v", i, s.Key, s.IsImage(), ws.Key, ws.IsImage())
		}
		if ws.IsImage() {
			if s.Image.Height != ws.Image.Height || s.Image.Width != ws.Image.Width || !bytes.Equal(s.Image.Pix, ws.Image.Pix) ||
				s.Global.Count != 0 || s.Local.Count != 0 {
				t.Errorf("sample %d: image %dx%d (views %d+%d), want %dx%d", i, s.Image.Height, s.Image.Width,
					s.Global.Count, s.Local.Count, ws.Image.Height, ws.Image.Width)
			}
		} else if !bytes.Equal(s.Global.Pix, ws.Global.Pix) || !bytes.Equal(s.Local.Pix, ws.Local.Pix) || s.Image.Height != 0 {
			t.Errorf("sample %d: views differ", i)
		}
	}
}

func readShardFile(t *testing.T, uri string) []byte {
	t.Helper()
	b, err := storage.ReadFile(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImageSampleValidate(t *testing.T) {
	good := makeImageSample(0, 3, 4)
	both := makeImageSample(0, 3, 4)
	both.Global = makeViews(0, 0, 1, 2, 2)
	short := makeImageSample(0, 3, 4)
	short.Image.Pix = short.Image.Pix[:10]
	flat := makeImageSample(0, 3, 4)
	flat.Image.Height = 0
	for _, c := range []struct {
		name string
		s    *Sample
		ok   bool
	}{
		{"good", good, true},
		{"image and views", both, false},
		{"pixels short of the shape", short, false},
		{"zero height", flat, false},
	} {
		err := c.s.Validate()
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalidSample)) {
			t.Errorf("%s: Validate() = %v, want ok=%v (ErrInvalidSample)", c.name, err, c.ok)
		}
	}
}

// TestReaderRejectsBadImageMember: an image member that is not uint8
// [H, W, 3] makes the shard corrupt, naming the member.
func TestReaderRejectsBadImageMember(t *testing.T) {
	for _, c := range []struct {
		name  string
		shape []int
		dtype npy.DType
	}{
		{"four dimensions", []int{1, 2, 2, 3}, npy.Uint8},
		{"gray", []int{2, 2}, npy.Uint8},
		{"four channels", []int{2, 2, 4}, npy.Uint8},
		{"empty rows", []int{0, 2, 3}, npy.Uint8},
		{"float", []int{2, 2, 3}, npy.Float32},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		add := func(name string, body []byte) {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644}); err != nil {
				t.Fatal(err)
			}
			tw.Write(body)
		}
		add("k.json", []byte(`{}`))
		head, err := npy.AppendHeader(nil, npy.Header{DType: c.dtype, Shape: c.shape})
		if err != nil {
			t.Fatal(err)
		}
		n := 1
		for _, d := range c.shape {
			n *= d
		}
		if c.dtype == npy.Float32 {
			n *= 4
		}
		add("k.image.npy", append(head, make([]byte, n)...))
		tw.Close()
		var s Sample
		err = NewReader(bytes.NewReader(buf.Bytes()), "bad", nil).Next(&s)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "k.image.npy") {
			t.Errorf("%s: err = %v, want ErrCorrupt naming k.image.npy", c.name, err)
		}
	}
}
