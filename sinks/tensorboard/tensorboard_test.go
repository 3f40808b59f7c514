package tensorboard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sslight-go/sslight/sinks/tensorboard/tbproto"
)

// The CRC32C check value of "123456789" is the catalogue's 0xe3069283; the
// masked values were computed with crcmod's CRC-32C and the TFRecord mask
// formula in Python.
func TestMaskedCRC(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want uint32
	}{
		{[]byte("123456789"), 0xc78ab0e5},
		{make([]byte, 8), 0x07980329},
		{nil, 0xa282ead8},
	} {
		if got := MaskedCRC(tc.in); got != tc.want {
			t.Errorf("MaskedCRC(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

// A record of "abc" laid out as the TFRecord format specifies.
func TestAppendRecordLayout(t *testing.T) {
	rec := AppendRecord(nil, []byte("abc"))
	if len(rec) != 8+4+3+4 {
		t.Fatalf("record of %d bytes, want 19", len(rec))
	}
	if !bytes.Equal(rec[:8], []byte{3, 0, 0, 0, 0, 0, 0, 0}) || string(rec[12:15]) != "abc" {
		t.Fatalf("record %x", rec)
	}
	recs, err := ReadRecords(bytes.NewReader(append(rec, AppendRecord(nil, nil)...)))
	if err != nil || len(recs) != 2 || string(recs[0]) != "abc" || len(recs[1]) != 0 {
		t.Fatalf("ReadRecords = %q, %v", recs, err)
	}
}

func TestReadRecordsRefusesDamage(t *testing.T) {
	good := AppendRecord(nil, []byte("some event bytes"))
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"length byte flipped", flip(good, 0)},
		{"length CRC flipped", flip(good, 9)},
		{"data byte flipped", flip(good, 14)},
		{"data CRC flipped", flip(good, len(good)-1)},
		{"truncated data", good[:len(good)-3]},
		{"truncated header", good[:5]},
		{"huge length", func() []byte {
			b := AppendRecord(nil, nil)
			b[7] = 0x7f // declares ~2^62 bytes; its CRC is then wrong too
			return b
		}()},
	} {
		if _, err := ReadRecords(bytes.NewReader(tc.b)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", tc.name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x40
	return c
}

func samplePNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Pix[0] = 200
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeSample writes the events every test reads back: the file version,
// two steps of scalars and an image.
func writeSample(t *testing.T, dir string) *Writer {
	t0 := time.Unix(1700000000, 250e6)
	w := NewWriter(dir, "sslight test", t0)
	w.Scalars(0, t0.Add(time.Second), map[string]float64{"train/loss": 9.5, "train/lr": 0.0015})
	w.Scalars(10, t0.Add(2*time.Second), map[string]float64{"train/loss": 7.25, "train/lr": math.Inf(1)})
	w.Image("plots/loss", 10, t0.Add(3*time.Second), samplePNG(t), 3, 2, 4)
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWriterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w := writeSample(t, dir)
	if filepath.Base(w.URI()) != "events.out.tfevents.1700000000.sslight_test" {
		t.Errorf("file name %s", filepath.Base(w.URI()))
	}
	f, err := os.Open(w.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := ReadEvents(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4", len(evs))
	}
	if evs[0].GetFileVersion() != FileVersion || evs[0].GetWallTime() != 1700000000.25 {
		t.Errorf("first event %v", evs[0])
	}
	vals := evs[1].GetSummary().GetValue()
	if len(vals) != 2 || vals[0].GetTag() != "train/loss" || vals[0].GetSimpleValue() != 9.5 ||
		vals[1].GetTag() != "train/lr" || vals[1].GetSimpleValue() != float32(0.0015) ||
		vals[0].GetMetadata().GetPluginData().GetPluginName() != "scalars" {
		t.Errorf("step 0 values %v", vals)
	}
	if evs[2].GetStep() != 10 || !math.IsInf(float64(evs[2].GetSummary().GetValue()[1].GetSimpleValue()), 1) {
		t.Errorf("step 10 event %v", evs[2])
	}
	img := evs[3].GetSummary().GetValue()[0].GetImage()
	if img.GetWidth() != 3 || img.GetHeight() != 2 || img.GetColorspace() != 4 || !bytes.Equal(img.GetEncodedImageString(), samplePNG(t)) {
		t.Errorf("image %v", img)
	}
	// A second flush rewrites the whole file with the new records.
	w.Scalars(20, time.Time{}, map[string]float64{"train/loss": 6})
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(w.URI())
	if recs, err := ReadRecords(bytes.NewReader(b)); err != nil || len(recs) != 5 || len(b) != w.Size() {
		t.Errorf("after the second flush: %d records, %v, %d bytes (Size %d)", len(recs), err, len(b), w.Size())
	}
}

// TestIndependentReader decodes the file with crcmod's CRC-32C and a wire
// decoder written from the format's specification (testdata/read_events.py).
func TestIndependentReader(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import crcmod.predefined").Run(); err != nil {
		t.Skipf("%s with crcmod (Debian python3-crcmod) not available: %v", py, err)
	}
	w := writeSample(t, t.TempDir())
	out, err := exec.Command(py, "testdata/read_events.py", w.URI()).CombinedOutput()
	if err != nil {
		t.Fatalf("read_events.py: %v\n%s", err, out)
	}
	type value struct {
		Tag    string `json:"tag"`
		Simple any    `json:"simple_value"`
		Plugin string `json:"plugin"`
		Image  *struct {
			Width, Height, Colorspace int
			PNGBytes                  int  `json:"png_bytes"`
			SignatureOK               bool `json:"png_signature_ok"`
		} `json:"image"`
	}
	var evs []struct {
		WallTime    float64 `json:"wall_time"`
		Step        int64   `json:"step"`
		FileVersion string  `json:"file_version"`
		Values      []value `json:"values"`
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e struct {
			WallTime    float64 `json:"wall_time"`
			Step        int64   `json:"step"`
			FileVersion string  `json:"file_version"`
			Values      []value `json:"values"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		evs = append(evs, e)
	}
	if len(evs) != 4 || evs[0].FileVersion != FileVersion || evs[0].WallTime != 1700000000.25 {
		t.Fatalf("events %+v", evs)
	}
	v := evs[1].Values
	if len(v) != 2 || v[0].Tag != "train/loss" || v[0].Simple != 9.5 || v[0].Plugin != "scalars" || evs[1].WallTime != 1700000001.25 {
		t.Errorf("step 0 as Python reads it: %+v", evs[1])
	}
	if evs[2].Step != 10 || len(evs[2].Values) != 2 || evs[2].Values[0].Simple != 7.25 || evs[2].Values[1].Simple != "inf" {
		t.Errorf("step 10 as Python reads it: %+v", evs[2])
	}
	im := evs[3].Values[0].Image
	if im == nil || im.Width != 3 || im.Height != 2 || im.Colorspace != 4 || !im.SignatureOK || im.PNGBytes != len(samplePNG(t)) {
		t.Errorf("image as Python reads it: %+v", evs[3].Values)
	}
}

func FuzzReadRecords(f *testing.F) {
	f.Add(AppendRecord(nil, []byte("x")))
	ev, _ := marshalEvent(&tbproto.Event{Step: 3, What: &tbproto.Event_FileVersion{FileVersion: FileVersion}})
	f.Add(AppendRecord(nil, ev))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ReadRecords(bytes.NewReader(b))
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		if err == nil {
			// What reads back re-frames to the same bytes.
			var again []byte
			for _, r := range recs {
				again = AppendRecord(again, r)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-framed records differ from the input")
			}
		}
		_, _ = ReadEvents(bytes.NewReader(b))
	})
}
