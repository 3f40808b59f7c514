// Package tensorboard writes TensorBoard event files (tfevents): scalars and
// PNG images, so a run's curves open in the TensorBoard people already use
// (`tensorboard --logdir DIR`), beside sslight's own metrics.jsonl.
//
// An events file is a sequence of TFRecord records, each
//
//	uint64 length (little endian)
//	uint32 masked CRC32C of the length bytes
//	length bytes of data: one serialised tensorboard.Event
//	uint32 masked CRC32C of the data
//
// where masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8. The first
// record holds file_version "brain.Event:2"; the others hold a Summary.
//
// Object stores cannot append, so a Writer keeps its file's records in
// memory and Flush replaces the whole file atomically (sinks/storage): a
// crash loses at most what was logged since the last Flush, and a reader
// never sees a torn record. Scalars cost about 40 bytes each.
package tensorboard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/sinks/tensorboard/tbproto"
)

// FileVersion is the first event's file_version, as TensorFlow 2 and
// PyTorch's SummaryWriter write it.
const FileVersion = "brain.Event:2"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskDelta is the constant TFRecord adds to a rotated CRC.
const maskDelta = 0xa282ead8

// MaskedCRC returns the TFRecord checksum of p: its CRC32C, rotated right
// by 15 bits plus 0xa282ead8 (the mask keeps a CRC of data that holds CRCs
// from being trivially valid).
func MaskedCRC(p []byte) uint32 {
	c := crc32.Checksum(p, castagnoli)
	return ((c >> 15) | (c << 17)) + maskDelta
}

// AppendRecord appends data framed as one TFRecord to dst.
func AppendRecord(dst, data []byte) []byte {
	var head [12]byte
	binary.LittleEndian.PutUint64(head[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(head[8:], MaskedCRC(head[:8]))
	dst = append(dst, head[:]...)
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint32(dst, MaskedCRC(data))
}

// ErrCorrupt is wrapped by every error about a malformed events file.
var ErrCorrupt = errors.New("tensorboard: corrupt record")

// maxRecord bounds one record's declared length when reading, so a damaged
// length field cannot ask for gigabytes.
const maxRecord = 256 << 20

// ReadRecords splits an events file into its records' data, checking both
// CRCs of every record. A truncated last record is an error: Flush never
// writes one.
func ReadRecords(r io.Reader) ([][]byte, error) {
	var out [][]byte
	for i := 0; ; i++ {
		var head [12]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, fmt.Errorf("%w: record %d: header: %v", ErrCorrupt, i, err)
		}
		if got, want := binary.LittleEndian.Uint32(head[8:]), MaskedCRC(head[:8]); got != want {
			return out, fmt.Errorf("%w: record %d: length CRC %08x, want %08x", ErrCorrupt, i, got, want)
		}
		n := binary.LittleEndian.Uint64(head[:8])
		if n > maxRecord {
			return out, fmt.Errorf("%w: record %d: length %d over %d", ErrCorrupt, i, n, maxRecord)
		}
		data := make([]byte, n+4)
		if _, err := io.ReadFull(r, data); err != nil {
			return out, fmt.Errorf("%w: record %d: %d data bytes: %v", ErrCorrupt, i, n, err)
		}
		if got, want := binary.LittleEndian.Uint32(data[n:]), MaskedCRC(data[:n]); got != want {
			return out, fmt.Errorf("%w: record %d: data CRC %08x, want %08x", ErrCorrupt, i, got, want)
		}
		out = append(out, data[:n:n])
	}
}

// ReadEvents decodes an events file.
func ReadEvents(r io.Reader) ([]*tbproto.Event, error) {
	recs, err := ReadRecords(r)
	if err != nil {
		return nil, err
	}
	evs := make([]*tbproto.Event, len(recs))
	for i, rec := range recs {
		evs[i] = &tbproto.Event{}
		if err := proto.Unmarshal(rec, evs[i]); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrCorrupt, i, err)
		}
	}
	return evs, nil
}

// Writer collects the events of one events file under a log folder. It is
// safe for concurrent use.
type Writer struct {
	uri string
	now func() time.Time

	mu   sync.Mutex
	data []byte // every record so far, framed
	err  error  // first encoding error; sticky
}

// NewWriter starts an events file in dir (a local folder or gs:// prefix),
// named events.out.tfevents.<unix seconds>.<name> as TensorBoard expects
// ("tfevents" in the name; files of one folder are read together, so a
// resumed run adds a file). name tells runs apart, e.g. "sslight".
func NewWriter(dir, name string, start time.Time) *Writer {
	if name == "" {
		name = "sslight"
	}
	name = strings.NewReplacer("/", "_", " ", "_").Replace(name)
	w := &Writer{uri: storage.Join(dir, fmt.Sprintf("events.out.tfevents.%d.%s", start.Unix(), name)), now: time.Now}
	w.add(&tbproto.Event{WallTime: seconds(start), What: &tbproto.Event_FileVersion{FileVersion: FileVersion}})
	return w
}

// URI is the events file's location.
func (w *Writer) URI() string { return w.uri }

func seconds(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

func (w *Writer) add(ev *tbproto.Event) {
	b, err := marshalEvent(ev)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.err = errors.Join(w.err, fmt.Errorf("tensorboard: encode event: %w", err))
		return
	}
	w.data = AppendRecord(w.data, b)
}

// scalarsPlugin marks a value as a scalar series, as TensorFlow 2's
// tf.summary.scalar does.
var scalarsPlugin = &tbproto.SummaryMetadata{PluginData: &tbproto.SummaryMetadata_PluginData{PluginName: "scalars"}}

// Scalars logs named values of one step at wall time t (the zero time:
// now). Non-finite values are logged as they are: TensorBoard draws them
// as gaps, which is what a diverged step should look like.
func (w *Writer) Scalars(step int64, t time.Time, values map[string]float64) {
	if len(values) == 0 {
		return
	}
	if t.IsZero() {
		t = w.now()
	}
	tags := make([]string, 0, len(values))
	for k := range values {
		tags = append(tags, k)
	}
	slices.Sort(tags)
	s := &tbproto.Summary{}
	for _, tag := range tags {
		s.Value = append(s.Value, &tbproto.Summary_Value{Tag: tag, Metadata: scalarsPlugin,
			Value: &tbproto.Summary_Value_SimpleValue{SimpleValue: float32(values[tag])}})
	}
	w.add(&tbproto.Event{WallTime: seconds(t), Step: step, What: &tbproto.Event_Summary{Summary: s}})
}

// Image logs a PNG (w×h pixels, colorspace 1 gray, 3 RGB, 4 RGBA) under
// tag at step.
func (w *Writer) Image(tag string, step int64, t time.Time, png []byte, width, height, colorspace int) {
	if t.IsZero() {
		t = w.now()
	}
	v := &tbproto.Summary_Value{Tag: tag, Value: &tbproto.Summary_Value_Image{Image: &tbproto.Summary_Image{
		Height: int32(height), Width: int32(width), Colorspace: int32(colorspace), EncodedImageString: png}}}
	w.add(&tbproto.Event{WallTime: seconds(t), Step: step, What: &tbproto.Event_Summary{Summary: &tbproto.Summary{Value: []*tbproto.Summary_Value{v}}}})
}

// Flush replaces the events file with every record so far.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	data, err := append([]byte(nil), w.data...), w.err
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return storage.WriteFile(ctx, w.uri, data)
}

// Size is the events file's size in bytes at the next Flush.
func (w *Writer) Size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.data)
}

func marshalEvent(ev *tbproto.Event) ([]byte, error) { return proto.Marshal(ev) }
