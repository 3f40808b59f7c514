package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gcs "cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// gcsFS is the gs:// scheme on cloud.google.com/go/storage. Every call
// goes through retry with the client's own retrying switched off (handles
// carry RetryNever), so the policy, the attempt count in errors and the
// retry status are one thing; the one exception is a streamed upload,
// whose chunks only the client can re-send (see Writer).
type gcsFS struct{}

// gcsClients holds one client per STORAGE_EMULATOR_HOST value: the client
// binds its endpoint when built, and tests start emulators on new ports.
// A client is safe for concurrent use and lives as long as the process.
var gcsClients struct {
	sync.Mutex
	m map[string]*gcs.Client
}

// gcsClient returns the process's client for the current
// STORAGE_EMULATOR_HOST. It is built under a context that is never
// cancelled: a cached client outlives the call that made it, and its token
// refresh runs under that context. Credentials are the client's defaults
// (Application Default Credentials; none against an emulator); without any,
// an unauthenticated client still reads public buckets.
func gcsClient() (*gcs.Client, error) {
	key := os.Getenv("STORAGE_EMULATOR_HOST")
	gcsClients.Lock()
	defer gcsClients.Unlock()
	if c, ok := gcsClients.m[key]; ok {
		return c, nil
	}
	ctx := context.Background()
	c, err := gcs.NewClient(ctx, option.WithScopes(gcs.ScopeReadWrite))
	if err != nil {
		var uerr error
		if c, uerr = gcs.NewClient(ctx, option.WithoutAuthentication()); uerr != nil {
			return nil, fmt.Errorf("GCS client: %w", errors.Join(err, uerr))
		}
	}
	if gcsClients.m == nil {
		gcsClients.m = map[string]*gcs.Client{}
	}
	gcsClients.m[key] = c
	return c, nil
}

// parseGCS splits "gs://bucket/name" without URL parsing, so names holding
// '?', '#' or '%' are names like any other.
func parseGCS(uri string) (bucket, name string, err error) {
	rest, ok := strings.CutPrefix(uri, "gs://")
	if !ok {
		return "", "", fmt.Errorf("%q is not a gs:// URI", uri)
	}
	bucket, name, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket", uri)
	}
	return bucket, name, nil
}

// gcsObject returns a handle on the object uri names, with the client's
// retrying off. A URI naming a bucket but no object is an error.
func gcsObject(uri string) (*gcs.ObjectHandle, error) {
	bucket, name, err := parseGCS(uri)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%q names a bucket, not an object", uri)
	}
	c, err := gcsClient()
	if err != nil {
		return nil, err
	}
	return c.Bucket(bucket).Object(name).Retryer(gcs.WithPolicy(gcs.RetryNever)), nil
}

// gcsClassify maps the client's "no such object/bucket" onto fs.ErrNotExist
// so callers test one sentinel whatever the scheme.
func gcsClassify(err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if errors.Is(err, gcs.ErrObjectNotExist) || errors.Is(err, gcs.ErrBucketNotExist) {
		return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	return err
}

// readAll reads uri whole, each attempt a fresh request. The policy's
// timeout bounds the whole read, including the client's own reopening of
// a stream that breaks mid-body (which it does inside one Read, unbounded).
func (gcsFS) readAll(ctx context.Context, uri string, sizeHint, limit int64) ([]byte, error) {
	h, err := gcsObject(uri)
	if err != nil {
		return nil, err
	}
	var data []byte
	err = retry(ctx, "", func(ctx context.Context, _ int) error {
		r, err := h.NewReader(ctx)
		if err != nil {
			return gcsClassify(err)
		}
		defer r.Close()
		data, err = readLimited(r, r.Attrs.Size, sizeHint, limit)
		return err
	})
	return data, err
}

func (gcsFS) open(ctx context.Context, uri string) (io.ReadCloser, error) {
	h, err := gcsObject(uri)
	if err != nil {
		return nil, err
	}
	p, err := CurrentPolicy()
	if err != nil {
		return nil, err
	}
	r := &gcsReader{ctx: ctx, uri: uri, h: h, policy: p}
	if err := r.reopen(); err != nil {
		return nil, err
	}
	// Later stretches read the bytes this open saw, or fail if the object
	// was replaced meanwhile.
	r.h = h.Generation(r.gen)
	return r, nil
}

// gcsReader is a streaming read that survives broken connections: a read
// error a retry can cure reopens the object (the same generation) at the
// offset reached, under the policy, however long the stream has run.
type gcsReader struct {
	ctx    context.Context
	uri    string
	h      *gcs.ObjectHandle
	r      *gcs.Reader
	cancel context.CancelFunc
	off    int64
	gen    int64
	policy Policy
	fails  int   // breaks since the last read that went through
	err    error // sticky
}

// reopen opens the object at r.off. The reader lives under a context of
// its own, cancelled by Close, while the policy's timeout bounds only the
// opening.
func (r *gcsReader) reopen() error {
	what := "" // Open names the object
	if r.off > 0 {
		what = fmt.Sprintf("read %s from byte %d", r.uri, r.off)
	}
	return retry(r.ctx, what, func(octx context.Context, _ int) error {
		rctx, cancel := context.WithCancel(r.ctx)
		stop := context.AfterFunc(octx, cancel) // the attempt's deadline ends the opening
		nr, err := r.h.NewRangeReader(rctx, r.off, -1)
		if !stop() {
			err = errors.Join(err, octx.Err())
		}
		if err != nil {
			cancel()
			if nr != nil {
				nr.Close()
			}
			return gcsClassify(err)
		}
		r.r, r.cancel = nr, cancel
		if r.gen == 0 {
			r.gen = nr.Attrs.Generation
		}
		return nil
	})
}

func (r *gcsReader) Read(p []byte) (int, error) {
	for r.err == nil {
		n, err := r.readOnce(p)
		r.off += int64(n)
		if err == nil || err == io.EOF {
			return n, err
		}
		// Bytes that arrived before the break are the caller's now; the
		// next Read goes on from the reopened stream.
		if berr := r.broken(err); berr != nil || n > 0 {
			return n, berr
		}
	}
	return 0, r.err
}

// errStalled: one read made no progress for the policy's timeout.
var errStalled = errors.New("no progress")

// readOnce reads from the current stream under a watchdog: the client
// reopens a broken stream by itself inside one Read, without backoff or a
// bound, and a stalled connection never returns at all, so a Read that
// runs past the policy's timeout is cancelled and counts as one failed
// attempt.
func (r *gcsReader) readOnce(p []byte) (int, error) {
	var stalled atomic.Bool
	cancel, timeout := r.cancel, r.policy.Timeout
	t := time.AfterFunc(timeout, func() { stalled.Store(true); cancel() })
	n, err := r.r.Read(p)
	t.Stop()
	if err != nil && stalled.Load() {
		err = curable{fmt.Errorf("%w for %s: %w", errStalled, timeout, err)}
	}
	if err == nil && n > 0 {
		r.fails = 0
	}
	return n, err
}

// broken handles a read error: a curable one reopens the object (nil when
// that worked), any other becomes the reader's error, and so does the
// policy's Attempts-th break in a row without a read going through.
func (r *gcsReader) broken(err error) error {
	r.r.Close()
	r.cancel()
	r.r = nil
	r.fails++
	if r.ctx.Err() != nil || !retryable(err) {
		r.err = fmt.Errorf("read %s at byte %d: %w", r.uri, r.off, err)
		return r.err
	}
	if r.fails >= r.policy.Attempts {
		r.err = fmt.Errorf("read %s at byte %d: %w after %d breaks in a row (limit %d attempts): last error: %w",
			r.uri, r.off, ErrGaveUp, r.fails, r.policy.Attempts, err)
		retryStats.gaveUp.Add(1)
		return r.err
	}
	noteRetry(err)
	retryStats.waiting.Add(1)
	rerr := r.reopen()
	retryStats.waiting.Add(-1)
	if rerr != nil {
		r.err = fmt.Errorf("%w (the stream broke with: %v)", rerr, err)
		return r.err
	}
	return nil
}

// errReaderClosed is what a read after Close returns.
var errReaderClosed = errors.New("reader closed")

func (r *gcsReader) Close() error {
	if r.err == nil {
		r.err = fmt.Errorf("read %s: %w", r.uri, errReaderClosed)
	}
	if r.r == nil {
		return nil
	}
	err := r.r.Close()
	r.cancel()
	r.r = nil
	return err
}

func (gcsFS) stat(ctx context.Context, uri string) (Object, error) {
	h, err := gcsObject(uri)
	if err != nil {
		return Object{URI: uri}, err
	}
	var a *gcs.ObjectAttrs
	err = retry(ctx, "", func(ctx context.Context, _ int) error {
		a, err = h.Attrs(ctx)
		return gcsClassify(err)
	})
	if err != nil {
		return Object{URI: uri}, err
	}
	return Object{URI: uri, Size: a.Size, MTime: a.Updated.UnixNano(), Generation: a.Generation, crc32c: a.CRC32C}, nil
}

func (g gcsFS) size(ctx context.Context, uri string) (int64, error) {
	o, err := g.stat(ctx, uri)
	return o.Size, err
}

// listPageSize is how many names one listing request asks for: GCS's
// maximum. A variable so tests can make listings of several pages.
var listPageSize = 1000

// listPrefix calls fn with the attributes of every object whose name starts
// with prefix, page by page: one request per thousand objects, each page
// retried under the policy from the page token it started at.
func listPrefix(ctx context.Context, bucket, prefix string, attrs []string, fn func(*gcs.ObjectAttrs)) error {
	c, err := gcsClient()
	if err != nil {
		return err
	}
	q := &gcs.Query{Prefix: prefix, Projection: gcs.ProjectionNoACL}
	if err := q.SetAttrSelection(attrs); err != nil {
		return err
	}
	b := c.Bucket(bucket).Retryer(gcs.WithPolicy(gcs.RetryNever))
	token := ""
	for page := 1; ; page++ {
		var objs []*gcs.ObjectAttrs
		err := retry(ctx, fmt.Sprintf("page %d", page), func(ctx context.Context, _ int) error {
			objs = objs[:0]
			next, err := iterator.NewPager(b.Objects(ctx, q), listPageSize, token).NextPage(&objs)
			if err != nil {
				return gcsClassify(err)
			}
			token = next
			return nil
		})
		if err != nil {
			return err
		}
		for _, o := range objs {
			fn(o)
		}
		if token == "" {
			return nil
		}
	}
}

// walk lists every object under root in one paged prefix listing that
// carries sizes, times and generations (a name-only listing would cost two
// more requests per object). Names ending in '/' are the console's folder
// placeholders, not files. An empty prefix is an empty listing: a bucket
// cannot tell an empty prefix from a missing one.
func (gcsFS) walk(ctx context.Context, root string) ([]Object, error) {
	bucket, prefix, err := parseGCS(root)
	if err != nil {
		return nil, err
	}
	if prefix = strings.TrimSuffix(prefix, "/"); prefix != "" {
		prefix += "/"
	}
	base := "gs://" + bucket + "/"
	var objs []Object
	err = listPrefix(ctx, bucket, prefix, []string{"Name", "Size", "Updated", "Generation"}, func(a *gcs.ObjectAttrs) {
		if strings.HasSuffix(a.Name, "/") {
			return
		}
		objs = append(objs, Object{URI: base + a.Name, Rel: a.Name[len(prefix):],
			Size: a.Size, MTime: a.Updated.UnixNano(), Generation: a.Generation})
	})
	return objs, err
}

func (gcsFS) list(ctx context.Context, glob string) ([]string, error) {
	bucket, pattern, err := parseGCS(glob)
	if err != nil {
		return nil, err
	}
	if globMeta(bucket) {
		return nil, fmt.Errorf("%q: a bucket name cannot be a glob", glob)
	}
	if err := validGlob(pattern); err != nil {
		return nil, err
	}
	var names []string
	err = listPrefix(ctx, bucket, globPrefix(pattern), []string{"Name"}, func(a *gcs.ObjectAttrs) {
		if matchGlob(pattern, a.Name) {
			names = append(names, "gs://"+bucket+"/"+a.Name)
		}
	})
	sort.Strings(names)
	return names, err
}

// remove deletes uri. A delete retried after an attempt whose answer was
// lost may find the object already gone: that is the success it retried.
func (gcsFS) remove(ctx context.Context, uri string) error {
	h, err := gcsObject(uri)
	if err != nil {
		return err
	}
	return gcsDelete(ctx, "", h)
}

func gcsDelete(ctx context.Context, what string, h *gcs.ObjectHandle) error {
	return retry(ctx, what, func(ctx context.Context, attempt int) error {
		err := h.Delete(ctx)
		if attempt > 1 && errors.Is(err, gcs.ErrObjectNotExist) {
			return nil
		}
		return gcsClassify(err)
	})
}

// rename copies src to dst on the server, checks the copy's size and
// CRC32C against the source's, and deletes the source (only the generation
// that was copied: a source replaced meanwhile is not lost). GCS has no rename; a crash between the two steps
// leaves both objects, never neither.
func (g gcsFS) rename(ctx context.Context, src, dst string) error {
	from, err := g.stat(ctx, src)
	if err != nil {
		return err
	}
	sh, err := gcsObject(src)
	if err != nil {
		return err
	}
	dh, err := gcsObject(dst)
	if err != nil {
		return err
	}
	sh = sh.Generation(from.Generation)
	err = retry(ctx, "copy", func(ctx context.Context, _ int) error {
		a, err := dh.CopierFrom(sh).Run(ctx)
		if err != nil {
			return gcsClassify(err)
		}
		return checkObject(dst, Digest{CRC32C: from.crc32c, Size: from.Size}, a.Size, a.CRC32C)
	})
	if err != nil {
		return err
	}
	return gcsDelete(ctx, "remove the source after the copy", sh)
}
