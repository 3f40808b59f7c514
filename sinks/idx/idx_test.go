package idx

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// idxFile builds an IDX file by hand: magic bytes, big-endian dims, body.
func idxFile(typ byte, dims []uint32, body []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, typ, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(body)
	return b.Bytes()
}

func gz(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// seq returns n bytes 0, 1, 2, ... (mod 256): every pixel is its own offset,
// so a misplaced record shows up as a wrong value.
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestReadImages(t *testing.T) {
	good := idxFile(0x08, []uint32{3, 2, 4}, seq(24))
	tests := []struct {
		name     string
		data     []byte
		wantN    int // records returned
		wantErr  string
		truncErr bool
	}{
		{name: "raw", data: good, wantN: 3},
		{name: "gzip", data: gz(t, good), wantN: 3},
		{name: "zero records", data: idxFile(0x08, []uint32{0, 28, 28}, nil), wantN: 0},
		{name: "truncated raw mid record", data: good[:len(good)-5], wantN: 2, truncErr: true, wantErr: "19 of 24 bytes, 2 of 3 records"},
		{name: "truncated before gzip", data: gz(t, good[:len(good)-9]), wantN: 1, truncErr: true, wantErr: "15 of 24 bytes, 1 of 3 records"},
		{name: "empty", data: nil, wantErr: "reading the 4-byte magic: unexpected EOF"},
		{name: "labels file", data: idxFile(0x08, []uint32{3}, seq(3)), wantErr: "want images: uint8 [N,H,W] (0x00000803)"},
		{name: "int32 images", data: idxFile(0x0C, []uint32{1, 1, 1}, seq(4)), wantErr: "is int32 [1 1 1], want images"},
		{name: "bad magic", data: []byte("\x89PNG\r\n\x1a\n"), wantErr: "magic 89 50 4e 47 is not IDX"},
		{name: "unknown type", data: []byte{0, 0, 0x07, 3, 0, 0, 0, 1}, wantErr: "unknown element type 0x07"},
		{name: "zero dims", data: []byte{0, 0, 0x08, 0}, wantErr: "0 dimensions"},
		{name: "short dims", data: []byte{0, 0, 0x08, 3, 0, 0, 0, 1, 0, 0}, wantErr: "reading 3 dimensions: unexpected EOF"},
		{name: "over limit", data: idxFile(0x08, []uint32{65536, 65536, 2}, nil), wantErr: "declare more than 4294967296 bytes"},
		{name: "max dims", data: idxFile(0x08, []uint32{0xffffffff, 0xffffffff, 0xffffffff}, nil), wantErr: "declare more than"},
		{name: "empty records", data: idxFile(0x08, []uint32{5, 0, 28}, nil), wantErr: "5 records of empty size 0x28"},
		{name: "trailing bytes", data: append(append([]byte{}, good...), 1, 2, 3), wantErr: "at least 3 bytes after the declared 24-byte body"},
		{name: "trailing gzip garbage", data: append(gz(t, good), 0xde, 0xad), wantErr: "after the body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ReadImages(bytes.NewReader(tc.data), "f.idx")
			if tc.wantErr == "" && !tc.truncErr {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
			} else {
				if err == nil {
					t.Fatalf("want error %q, got none", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "f.idx") {
					t.Fatalf("error %q does not name the file and contain %q", err, tc.wantErr)
				}
				var te *TruncatedError
				if errors.As(err, &te) != tc.truncErr {
					t.Fatalf("error %v: truncated = %v, want %v", err, !tc.truncErr, tc.truncErr)
				}
				if !tc.truncErr {
					return
				}
			}
			if m.N != tc.wantN {
				t.Fatalf("N = %d, want %d", m.N, tc.wantN)
			}
			if len(m.Pix) != m.N*m.H*m.W {
				t.Fatalf("len(Pix) = %d, want N*H*W = %d", len(m.Pix), m.N*m.H*m.W)
			}
			for i := 0; i < m.N; i++ {
				rec := m.Record(i)
				for j, v := range rec {
					if want := byte(i*m.H*m.W + j); v != want {
						t.Fatalf("record %d pixel %d = %d, want %d", i, j, v, want)
					}
				}
			}
		})
	}
}

func TestScanImagesAgreesWithRead(t *testing.T) {
	good := idxFile(0x08, []uint32{4, 3, 3}, seq(36))
	for cut := 0; cut <= len(good); cut++ {
		for _, zip := range []bool{false, true} {
			data := good[:cut]
			if zip {
				data = gz(t, data)
			}
			m, rerr := ReadImages(bytes.NewReader(data), "x")
			info, serr := ScanImages(bytes.NewReader(data), "x")
			if (rerr == nil) != (serr == nil) {
				t.Fatalf("cut %d gzip %v: read err %v, scan err %v", cut, zip, rerr, serr)
			}
			var te *TruncatedError
			if errors.As(rerr, &te) {
				if info.Complete != m.N || m.N != te.Complete {
					t.Fatalf("cut %d: scan complete %d, read N %d, error complete %d", cut, info.Complete, m.N, te.Complete)
				}
				// Every header byte is 16; a record is 9 bytes.
				if want := (cut - 16) / 9; m.N != want {
					t.Fatalf("cut %d: %d complete records, want %d", cut, m.N, want)
				}
			}
			if cut == len(good) && (rerr != nil || info.Complete != 4 || info.H != 3 || info.W != 3) {
				t.Fatalf("whole file: %+v %v", info, rerr)
			}
		}
	}
}

func TestReadLabels(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		want    []uint8
		wantErr string
	}{
		{name: "raw", data: idxFile(0x08, []uint32{4}, []byte{9, 0, 0, 3}), want: []uint8{9, 0, 0, 3}},
		{name: "gzip", data: gz(t, idxFile(0x08, []uint32{2}, []byte{7, 1})), want: []uint8{7, 1}},
		{name: "truncated", data: idxFile(0x08, []uint32{4}, []byte{9, 0}), want: []uint8{9, 0}, wantErr: "truncated body: 2 of 4 bytes"},
		{name: "images file", data: idxFile(0x08, []uint32{1, 1, 1}, []byte{1}), wantErr: "want labels: uint8 [N] (0x00000801)"},
		{name: "trailing", data: idxFile(0x08, []uint32{1}, []byte{1, 2}), wantErr: "at least 1 bytes after"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadLabels(bytes.NewReader(tc.data), "l.idx")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("labels %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCorruptGzip flips a byte of the gzip CRC: all the data arrives, but the
// stream's checksum fails, which only shows when the reader hits the end.
func TestCorruptGzip(t *testing.T) {
	z := gz(t, idxFile(0x08, []uint32{2, 2, 2}, seq(8)))
	z[len(z)-6] ^= 0xff // inside the CRC-32 trailer
	if _, err := ReadImages(bytes.NewReader(z), "c.gz"); !errors.Is(err, gzip.ErrChecksum) {
		t.Fatalf("error %v, want gzip.ErrChecksum", err)
	}
	if _, err := ScanImages(bytes.NewReader(z), "c.gz"); !errors.Is(err, gzip.ErrChecksum) {
		t.Fatalf("scan error %v, want gzip.ErrChecksum", err)
	}
}

// TestLyingHeaderAllocatesLittle feeds a header that declares 4 GiB followed
// by 100 bytes: a reader that trusted the header would allocate 4 GiB.
func TestLyingHeaderAllocatesLittle(t *testing.T) {
	data := idxFile(0x08, []uint32{1 << 16, 256, 256}, seq(100))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := ReadImages(bytes.NewReader(data), "liar")
	runtime.ReadMemStats(&after)
	var te *TruncatedError
	if !errors.As(err, &te) || m.N != 0 || te.Want != 1<<32 || te.Declared != 1<<16 {
		t.Fatalf("got N=%d err=%v, want a truncation of a 4 GiB body", m.N, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("allocated %d bytes for a 100-byte body", grew)
	}
}

// TestGzipStreamCut cuts a gzip stream (not the data before compressing):
// the records inflated before the cut come back, intact, with the error.
func TestGzipStreamCut(t *testing.T) {
	const n, rec = 64, 28 * 28
	body := make([]byte, n*rec)
	x := uint32(1)
	for i := range body { // xorshift noise: incompressible, so the cut lands mid-body
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		body[i] = byte(x)
	}
	z := gz(t, idxFile(0x08, []uint32{n, 28, 28}, body))
	m, err := ReadImages(bytes.NewReader(z[:len(z)/2]), "cut.gz")
	var te *TruncatedError
	if !errors.As(err, &te) {
		t.Fatalf("error %v, want *TruncatedError", err)
	}
	if m.N == 0 || m.N >= n || te.Complete != m.N || te.Declared != n {
		t.Fatalf("N = %d, error %+v: want some but not all of %d records", m.N, te, n)
	}
	if !bytes.Equal(m.Pix, body[:m.N*rec]) {
		t.Fatal("records before the cut differ from the original")
	}
}

// fashionDir holds Fashion-MNIST from the Debian package dataset-fashion-mnist.
const fashionDir = "/usr/share/datasets/fashion-mnist"

// TestFashionMNIST reads the real files and checks them against the raw
// bytes read independently: count from bytes 4..8 of the header, labels
// from offset 8, the first image from offset 16.
func TestFashionMNIST(t *testing.T) {
	imgPath := filepath.Join(fashionDir, "t10k-images-idx3-ubyte.gz")
	lblPath := filepath.Join(fashionDir, "t10k-labels-idx1-ubyte.gz")
	if _, err := os.Stat(imgPath); err != nil {
		t.Skipf("Fashion-MNIST not installed (Debian package dataset-fashion-mnist): %v", err)
	}
	rawImages := gunzipFile(t, imgPath)
	rawLabels := gunzipFile(t, lblPath)

	f, err := os.Open(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ReadImages(f, imgPath)
	if err != nil {
		t.Fatal(err)
	}
	if m.N != 10000 || m.H != 28 || m.W != 28 {
		t.Fatalf("images %dx%dx%d, want 10000x28x28", m.N, m.H, m.W)
	}
	if int(binary.BigEndian.Uint32(rawImages[4:])) != m.N {
		t.Fatalf("raw count %d != %d", binary.BigEndian.Uint32(rawImages[4:]), m.N)
	}
	if !bytes.Equal(m.Record(0), rawImages[16:16+784]) || !bytes.Equal(m.Record(9999), rawImages[len(rawImages)-784:]) {
		t.Fatal("first or last record differs from the raw bytes")
	}
	lf, err := os.Open(lblPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	labels, err := ReadLabels(lf, lblPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(labels, rawLabels[8:]) || len(labels) != 10000 {
		t.Fatalf("labels differ from the raw bytes (len %d)", len(labels))
	}
}

func gunzipFile(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseIDX(f *testing.F) {
	f.Add(idxFile(0x08, []uint32{2, 2, 3}, seq(12)))
	f.Add(idxFile(0x08, []uint32{3}, []byte{1, 2, 3}))
	f.Add(gz(f, idxFile(0x08, []uint32{1, 3, 3}, seq(9))))
	f.Add(idxFile(0x08, []uint32{2, 2, 3}, seq(7)))
	f.Add([]byte{0, 0, 0x0d, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadImages(bytes.NewReader(data), "fuzz")
		var te *TruncatedError
		if err == nil || errors.As(err, &te) {
			if len(m.Pix) != m.N*m.H*m.W {
				t.Fatalf("len(Pix) %d != %d*%d*%d", len(m.Pix), m.N, m.H, m.W)
			}
			for i := 0; i < m.N; i++ {
				_ = m.Record(i)
			}
		}
		info, serr := ScanImages(bytes.NewReader(data), "fuzz")
		if (err == nil) != (serr == nil) {
			t.Fatalf("ReadImages err %v but ScanImages err %v", err, serr)
		}
		if err == nil && info.Complete != m.N {
			t.Fatalf("scan complete %d != read N %d", info.Complete, m.N)
		}
		if te != nil && info.Complete != te.Complete {
			t.Fatalf("scan complete %d != truncated complete %d", info.Complete, te.Complete)
		}
		labels, lerr := ReadLabels(bytes.NewReader(data), "fuzz")
		if lerr == nil && len(data) >= 8 && len(labels) != int(binary.BigEndian.Uint32(data[4:])) && data[0] == 0 {
			t.Fatalf("labels len %d, header says %d", len(labels), binary.BigEndian.Uint32(data[4:]))
		}
	})
}
