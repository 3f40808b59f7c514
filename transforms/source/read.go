package source

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/sinks/idx"
	"github.com/sslight-go/sslight/sinks/storage"
)

// ErrRecordItem is returned by ReadItem for an IDX record item, which has
// no encoded bytes of its own: use OpenIDX and IDXRecords.RGB.
var ErrRecordItem = errors.New("item is a record inside a file, not an object")

// MaxObjectBytes is the largest object ReadItem and the listing's file
// reads accept (1 GiB): an image above it is surely not one, and reading
// it whole would risk the worker's memory.
const MaxObjectBytes = 1 << 30

// ErrTooLarge is returned (wrapped) for an object over MaxObjectBytes; it
// is storage.ErrTooLarge.
var ErrTooLarge = storage.ErrTooLarge

// ErrChanged is returned (wrapped) when an object's size differs from the
// listing's: it was replaced after listing, and processing it would break
// the link between the listing and the output.
var ErrChanged = errors.New("object changed since listing")

// ReadItem returns the encoded bytes of an object item (imagenet, coco,
// folder). Objects over MaxObjectBytes are refused with ErrTooLarge.
func ReadItem(ctx context.Context, it Item) ([]byte, error) {
	if it.Index >= 0 {
		return nil, fmt.Errorf("source: read %s: %w", it.Key, ErrRecordItem)
	}
	b, err := storage.ReadAll(ctx, it.URI, it.Size, MaxObjectBytes)
	if err != nil {
		return nil, fmt.Errorf("source: read %s: %w", it.URI, err)
	}
	if int64(len(b)) != it.Size {
		return nil, fmt.Errorf("source: read %s: %w: %d bytes, listed as %d", it.URI, ErrChanged, len(b), it.Size)
	}
	return b, nil
}

// IDXRecords is a parsed IDX images file held in memory: every record's
// gray pixels. Workers share one per file through OpenIDX.
type IDXRecords struct {
	URI    string
	images *idx.Images
}

// LoadIDX reads an IDX images file whole. A truncated file keeps its
// complete records (List has reported the rest).
func LoadIDX(ctx context.Context, uri string) (*IDXRecords, error) {
	rc, err := storage.Open(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("source: images file %s: %w", uri, err)
	}
	defer rc.Close()
	m, err := idx.ReadImages(rc, uri)
	var te *idx.TruncatedError
	if err != nil && !errors.As(err, &te) {
		return nil, fmt.Errorf("source: %w", err)
	}
	return &IDXRecords{URI: uri, images: m}, nil
}

// Len returns the number of records held.
func (r *IDXRecords) Len() int { return r.images.N }

// Bounds returns the record size in pixels.
func (r *IDXRecords) Bounds() (w, h int) { return r.images.W, r.images.H }

// Gray returns record i's H*W gray pixels, row-major; the slice is shared.
func (r *IDXRecords) Gray(i int) ([]uint8, error) {
	if i < 0 || i >= r.images.N {
		return nil, fmt.Errorf("source: %s: record %d out of range 0..%d", r.URI, i, r.images.N-1)
	}
	return r.images.Record(i), nil
}

// RGB writes record i into dst as RGB, each gray value replicated to the
// three channels, as PIL's convert("RGB") of an "L" image does. dst is
// resized (reusing its buffer when large enough).
func (r *IDXRecords) RGB(i int, dst *augment.Image) error {
	gray, err := r.Gray(i)
	if err != nil {
		return err
	}
	w, h := r.images.W, r.images.H
	dst.Reset(w, h)
	for y := range h {
		row := dst.Row(y)
		src := gray[y*w : (y+1)*w]
		for x, v := range src {
			row[3*x], row[3*x+1], row[3*x+2] = v, v, v
		}
	}
	return nil
}

// idxCacheSize is how many IDX files a process keeps parsed: a pipeline
// reads one split at a time, and Fashion-MNIST's train images are 47 MB.
const idxCacheSize = 4

type idxEntry struct {
	key   string
	ready chan struct{}
	recs  *IDXRecords
	err   error
}

var idxCache struct {
	sync.Mutex
	entries []*idxEntry // least recently added first
}

// OpenIDX returns the parsed images file of an IDX item, loading it once
// per process however many goroutines ask at once. The cache key includes
// the listed size, mtime and generation, so a file replaced after listing
// is not served from an old copy; a file whose size no longer matches the
// listing is refused with ErrChanged. Failed loads are not cached.
func OpenIDX(ctx context.Context, it Item) (*IDXRecords, error) {
	if it.Index < 0 {
		return nil, fmt.Errorf("source: %s is not an IDX record item", it.Key)
	}
	key := it.URI + "\x00" + strconv.FormatInt(it.Size, 10) + "\x00" + strconv.FormatInt(it.MTime, 10) + "\x00" + strconv.FormatInt(it.Generation, 10)
	idxCache.Lock()
	for _, e := range idxCache.entries {
		if e.key == key {
			idxCache.Unlock()
			select {
			case <-e.ready:
				return e.recs, e.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	e := &idxEntry{key: key, ready: make(chan struct{})}
	idxCache.entries = append(idxCache.entries, e)
	if len(idxCache.entries) > idxCacheSize {
		idxCache.entries = slices.Delete(idxCache.entries, 0, 1)
	}
	idxCache.Unlock()

	// The load is shared with every waiter, so one caller giving up must not
	// fail it for the others.
	e.recs, e.err = loadIDXItem(context.WithoutCancel(ctx), it)
	close(e.ready)
	if e.err != nil {
		idxCache.Lock()
		idxCache.entries = slices.DeleteFunc(idxCache.entries, func(x *idxEntry) bool { return x == e })
		idxCache.Unlock()
	}
	return e.recs, e.err
}

func loadIDXItem(ctx context.Context, it Item) (*IDXRecords, error) {
	o, err := storage.Stat(ctx, it.URI)
	if err != nil {
		return nil, fmt.Errorf("source: images file %s: %w", it.URI, err)
	}
	if o.Size != it.Size {
		return nil, fmt.Errorf("source: images file %s: %w: %d bytes, listed as %d", it.URI, ErrChanged, o.Size, it.Size)
	}
	return LoadIDX(ctx, it.URI)
}
