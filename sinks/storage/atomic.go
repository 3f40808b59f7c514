package storage

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	gcs "cloud.google.com/go/storage"
	gax "github.com/googleapis/gax-go/v2"
)

// Errors a Writer reports; match them with errors.Is.
var (
	// ErrClosed: Write, Commit or Abort after the writer was committed or
	// aborted.
	ErrClosed = errors.New("storage: writer already committed or aborted")
	// ErrChecksum: the object store holds different bytes than were written.
	ErrChecksum = errors.New("storage: checksum mismatch")
)

// bufferSize batches the small writes of tar headers and JSON lines into
// large local writes; big pixel writes bypass the buffer.
const bufferSize = 1 << 20

// tempPrefix starts the name of every in-progress local file. The leading dot
// hides it from `ls` and from globs such as "*.tar"; the random suffix keeps
// it from ending in the final name's extension.
const tempPrefix = ".tmp-"

// chunkSize is the most a gs:// Writer holds in memory: an object up to
// this size is uploaded in one request when committed and re-sent whole on
// a retry; a larger one streams as a resumable upload in chunks of this
// size (the client's default, 16 MiB). A variable so tests can make small
// multi-chunk objects.
var chunkSize = 16 << 20

// Writer writes one file that becomes visible at its URI only when Commit
// succeeds, and never if Abort is called or the process dies first:
//
//   - local paths: the bytes go to "<dir>/.tmp-<name>-<random>", which is
//     fsynced and renamed over the final name on Commit (parent folders are
//     created); CleanTemporaries removes those a killed process left;
//   - gs://: no temporary object. Up to one chunk (16 MiB) is held in
//     memory and uploaded in one request on Commit, retried whole under the
//     policy, and rewritten if the CRC32C and size GCS reports differ from
//     ours. A larger object streams as a resumable upload whose chunks the
//     client retries (RetryAlways: sslight's objects are idempotent); GCS
//     creates the object only when the upload completes. If a streamed
//     upload still fails, or its result does not match, the error names the
//     object and the caller must write it again (a Beam runner retries the
//     bundle; nothing partial is visible);
//   - memfs://: the bytes are held and stored on Commit.
//
// Writer keeps a running CRC32C and byte count of what it wrote. It is not
// safe for concurrent use. A typical use:
//
//	w, err := storage.Create(ctx, uri)
//	if err != nil { return err }
//	defer w.Abort() // no-op after a successful Commit
//	... write ...
//	return w.Commit()
type Writer struct {
	uri    string
	scheme string
	ctx    context.Context
	digest Digest
	err    error // first write error; sticky
	done   bool

	// local
	tmp string
	f   *os.File
	buf *bufio.Writer

	// memfs, and gs until the object outgrows one chunk
	held []byte

	// gs, once streaming
	stream   *gcs.Writer
	cancel   context.CancelFunc // abandons the upload
	streamed atomic.Int64       // bytes handed to the upload
	retries  atomic.Int64       // chunk retries taken
	policy   Policy
}

// Create starts an atomic write of uri. Nothing appears at uri until Commit.
func Create(ctx context.Context, uri string) (*Writer, error) {
	scheme := Scheme(uri)
	if scheme != "" && scheme != "gs" && scheme != "memfs" {
		return nil, fmt.Errorf("create %s: %w", uri, ErrUnsupportedScheme)
	}
	if uri == "" || strings.HasSuffix(uri, "/") || strings.HasSuffix(uri, "://") {
		return nil, fmt.Errorf("create %q: not a file name", uri)
	}
	w := &Writer{uri: uri, scheme: scheme, ctx: ctx}
	switch scheme {
	case "":
		suffix, err := randomSuffix()
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", uri, err)
		}
		dir, name := filepath.Split(uri)
		w.tmp = filepath.Join(dir, tempPrefix+name+"-"+suffix)
		if err := os.MkdirAll(filepath.Dir(w.tmp), 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", uri, err)
		}
		f, err := os.OpenFile(w.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", uri, err)
		}
		w.f, w.buf = f, bufio.NewWriterSize(f, bufferSize)
	case "gs":
		if _, err := gcsObject(uri); err != nil {
			return nil, fmt.Errorf("create %s: %w", uri, err)
		}
		p, err := CurrentPolicy()
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", uri, err)
		}
		w.policy = p
	}
	return w, nil
}

// URI returns the final name of the file being written.
func (w *Writer) URI() string { return w.uri }

// Size returns the number of bytes written so far.
func (w *Writer) Size() int64 { return w.digest.Size }

// CRC32C returns the CRC32C (Castagnoli) of the bytes written so far.
func (w *Writer) CRC32C() uint32 { return w.digest.CRC32C }

// Write appends p. After a failed write every later call fails too.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: %w", w.uri, ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	var (
		n   int
		err error
	)
	switch {
	case w.buf != nil:
		n, err = w.buf.Write(p)
	case w.stream != nil:
		n, err = w.stream.Write(p)
		w.streamed.Add(int64(n))
	default:
		w.held = append(w.held, p...)
		n = len(p)
		if w.scheme == "gs" && len(w.held) > chunkSize {
			err = w.startStream()
		}
	}
	w.digest.Write(p[:n])
	if err != nil {
		w.err = fmt.Errorf("write %s: %w", w.uri, err)
		return n, w.err
	}
	return n, nil
}

// startStream turns a held gs:// object that outgrew one chunk into a
// resumable upload and hands it the held bytes.
func (w *Writer) startStream() error {
	bucket, name, _ := parseGCS(w.uri)
	c, err := gcsClient()
	if err != nil {
		return err
	}
	p := w.policy
	h := c.Bucket(bucket).Object(name).Retryer(
		gcs.WithPolicy(gcs.RetryAlways),
		gcs.WithBackoff(gax.Backoff{Initial: max(p.Backoff, 1), Max: max(p.MaxBackoff, 1), Multiplier: 2}),
		gcs.WithMaxAttempts(p.Attempts),
		gcs.WithErrorFunc(w.retryChunk))
	ctx, cancel := context.WithCancel(w.ctx)
	sw := h.NewWriter(ctx)
	sw.ChunkSize = chunkSize
	sw.ChunkRetryDeadline = p.Timeout
	sw.ChunkTransferTimeout = p.Timeout
	w.stream, w.cancel = sw, cancel
	held := w.held
	w.held = nil
	n, err := sw.Write(held)
	w.streamed.Add(int64(n))
	return err
}

// retryChunk decides, for the client, whether a failed request of a
// streamed upload (its start or a chunk) is retried: the errors retry
// cures, up to Attempts-1 retries for each chunk sent so far (the client
// applies its max-attempts setting to neither), each chunk's retrying
// bounded by the policy's timeout (ChunkRetryDeadline).
func (w *Writer) retryChunk(err error) bool {
	if !retryable(err) || w.ctx.Err() != nil {
		return false
	}
	chunks := 1 + w.streamed.Load()/int64(chunkSize)
	if w.retries.Add(1) > int64(w.policy.Attempts-1)*chunks {
		return false
	}
	noteRetry(err)
	return true
}

// Commit makes the file visible at its URI with everything written so far.
// If it fails, nothing is visible and temporary files are gone.
func (w *Writer) Commit() error {
	if w.done {
		return fmt.Errorf("commit %s: %w", w.uri, ErrClosed)
	}
	if w.err != nil {
		err := w.err
		w.Abort()
		return err
	}
	if err := beforeChange(w.uri); err != nil {
		w.Abort()
		return fmt.Errorf("commit %s: %w", w.uri, err)
	}
	var err error
	switch {
	case w.scheme == "":
		err = w.commitLocal()
	case w.scheme == "memfs":
		memPut(w.uri, w.held)
	case w.stream != nil:
		err = w.commitStream()
	default:
		err = w.commitHeld()
	}
	if err != nil {
		w.Abort()
		return err
	}
	w.finish()
	return nil
}

func (w *Writer) commitLocal() error {
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("commit %s: %w", w.uri, err)
	}
	// fsync before rename: otherwise a crash can leave the new name pointing
	// at a file whose data never reached the disk.
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("commit %s: sync: %w", w.uri, err)
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("commit %s: close: %w", w.uri, err)
	}
	if err := os.Rename(w.tmp, w.uri); err != nil {
		return fmt.Errorf("commit %s: rename: %w", w.uri, err)
	}
	w.tmp = ""
	syncDir(filepath.Dir(w.uri))
	return nil
}

// commitHeld uploads a held gs:// object in one request per attempt. A
// mismatch between what GCS reports and what we hold is retried like a
// lost connection: the next attempt overwrites the damaged object with the
// same bytes. If attempts run out after a mismatch, the damaged object is
// deleted: a visible object must be a complete, correct one.
func (w *Writer) commitHeld() error {
	h, err := gcsObject(w.uri)
	if err != nil {
		return fmt.Errorf("commit %s: %w", w.uri, err)
	}
	mismatch := false
	err = retry(w.ctx, "", func(ctx context.Context, _ int) error {
		gw := h.NewWriter(ctx)
		gw.ChunkSize = 0 // one request: the bytes are re-sent by this loop
		// Our own check below compares the same CRC32C, and a mismatch is
		// one this loop cures by writing again; the client's would end it.
		gw.DisableAutoChecksum = true
		if _, err := gw.Write(w.held); err != nil {
			gw.Close()
			return err
		}
		if err := gw.Close(); err != nil {
			return err
		}
		a := gw.Attrs()
		if a == nil { // not seen from the client, but the check must not be skipped
			var err error
			if a, err = h.Attrs(ctx); err != nil {
				return err
			}
		}
		cerr := checkObject(w.uri, w.digest, a.Size, a.CRC32C)
		mismatch = cerr != nil
		return cerr
	})
	if err != nil && mismatch {
		err = errors.Join(err, w.removeDamaged())
	}
	if err != nil {
		return fmt.Errorf("commit %s: %w", w.uri, err)
	}
	return nil
}

// commitStream completes a resumable upload and checks its result.
func (w *Writer) commitStream() error {
	err := w.stream.Close()
	w.cancel()
	sent := w.streamed.Load()
	if err != nil {
		// The last request may have completed the upload with its answer
		// lost (the retry then finds no upload session). An object holding
		// exactly our bytes is the one we meant to write: sslight's names
		// always get the same bytes.
		if o, serr := (gcsFS{}).stat(w.ctx, w.uri); serr == nil && o.Size == w.digest.Size && o.crc32c == w.digest.CRC32C {
			return nil
		}
		return fmt.Errorf("commit %s: the upload failed after %d bytes were streamed; write the object again: %w",
			w.uri, sent, err)
	}
	a := w.stream.Attrs()
	if a == nil {
		return fmt.Errorf("commit %s: the upload reported no object attributes to check", w.uri)
	}
	if err := checkObject(w.uri, w.digest, a.Size, a.CRC32C); err != nil {
		// The streamed bytes are gone, so this writer cannot rewrite them.
		return fmt.Errorf("commit %s: %w; the object was deleted, write it again", w.uri, errors.Join(err, w.removeDamaged()))
	}
	return nil
}

// checkObject compares the size and CRC32C a store reports for a new
// object with what was written.
func checkObject(uri string, wrote Digest, size int64, crc uint32) error {
	if size == wrote.Size && crc == wrote.CRC32C {
		return nil
	}
	return curable{fmt.Errorf("%w: wrote %d bytes crc32c %s to %s, the object has %d bytes crc32c %s",
		ErrChecksum, wrote.Size, CRC32CBase64(wrote.CRC32C), uri, size, CRC32CBase64(crc))}
}

func (w *Writer) removeDamaged() error {
	h, err := gcsObject(w.uri)
	if err == nil {
		err = gcsDelete(context.WithoutCancel(w.ctx), "remove damaged "+w.uri, h)
	}
	if err != nil && !errors.Is(err, gcs.ErrObjectNotExist) {
		return err
	}
	return nil
}

// Abort abandons the write: nothing becomes visible and temporary files are
// removed. It is a no-op after Commit or an earlier Abort, so it is safe to
// defer.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	var err error
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if w.tmp != "" {
		if rerr := os.Remove(w.tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("abort %s: remove %s: %w", w.uri, w.tmp, rerr)
		}
	}
	if w.stream != nil {
		// A cancelled upload never sends its final request, so GCS creates
		// no object; Close only releases the upload goroutine and fails by
		// design.
		w.cancel()
		w.stream.Close()
	}
	w.finish()
	return err
}

func (w *Writer) finish() {
	w.done = true
	w.held, w.buf, w.stream = nil, nil, nil
	if w.cancel != nil {
		w.cancel()
	}
}

// syncDir makes a rename durable. It is best effort: some filesystems refuse
// to fsync a directory, and the rename itself has already succeeded.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}

func randomSuffix() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random temp suffix: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
