package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gcs "cloud.google.com/go/storage"
)

// Policy bounds how long one operation on object storage keeps trying. A
// retry is taken for errors a later attempt can cure: HTTP 408, 429 and 5xx,
// cut or refused connections, truncated bodies, a checksum mismatch after a
// write. Anything else (not found, permission denied, a bad request) fails
// at once.
type Policy struct {
	// Attempts is how many times one operation (a read, a stat, one page of
	// a listing, a write, a delete, a copy) is tried before it gives up (≥ 1).
	Attempts int
	// Timeout bounds one operation, its retries and pauses included (> 0).
	// A streaming read (Open) and a streamed write (an object larger than
	// one upload chunk) apply it to each stretch of retrying instead: how
	// long the whole stream takes is up to the caller.
	Timeout time.Duration
	// Backoff bounds the first pause between attempts; each later bound
	// doubles, up to MaxBackoff. Every pause is drawn uniformly below its
	// bound (full jitter), so workers that failed together do not retry
	// together.
	Backoff, MaxBackoff time.Duration
}

// DefaultPolicy is the policy used unless SetPolicy or the environment
// (SSLIGHT_STORAGE_ATTEMPTS, SSLIGHT_STORAGE_TIMEOUT) says otherwise: six
// attempts and two minutes per object, pauses from 0.5 s doubling to 30 s
// (at most 15.5 s of pauses over six attempts).
func DefaultPolicy() Policy {
	return Policy{Attempts: 6, Timeout: 2 * time.Minute, Backoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second}
}

// Environment variables that override DefaultPolicy's fields.
const (
	EnvAttempts = "SSLIGHT_STORAGE_ATTEMPTS" // a positive integer
	EnvTimeout  = "SSLIGHT_STORAGE_TIMEOUT"  // a Go duration: "90s", "5m"
)

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	switch {
	case p.Attempts < 1:
		return fmt.Errorf("storage policy: %d attempts: want at least 1", p.Attempts)
	case p.Timeout <= 0:
		return fmt.Errorf("storage policy: timeout %s: want a positive duration", p.Timeout)
	case p.Backoff < 0 || p.MaxBackoff < p.Backoff:
		return fmt.Errorf("storage policy: backoff %s up to %s: want 0 ≤ backoff ≤ max backoff", p.Backoff, p.MaxBackoff)
	}
	return nil
}

// PolicyFromEnv returns DefaultPolicy with the fields the environment sets
// (EnvAttempts, EnvTimeout), or an error naming a variable that does not
// parse. Commands may call it at start to refuse a bad value before any
// work; the storage functions apply it themselves unless SetPolicy was
// called.
func PolicyFromEnv() (Policy, error) {
	p := DefaultPolicy()
	if v, ok := os.LookupEnv(EnvAttempts); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return p, fmt.Errorf("storage: %s=%q: want a positive integer", EnvAttempts, v)
		}
		p.Attempts = n
	}
	if v, ok := os.LookupEnv(EnvTimeout); ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return p, fmt.Errorf("storage: %s=%q: want a positive duration such as 90s or 5m", EnvTimeout, v)
		}
		p.Timeout = d
	}
	return p, p.Validate()
}

// policy is the process-wide policy: DefaultPolicy overridden by the
// environment on first use, until SetPolicy replaces it.
var policy struct {
	sync.Mutex
	resolved bool
	p        Policy
	err      error // a bad environment value: every operation reports it
}

// SetPolicy replaces the process-wide retry policy (and any environment
// override). It affects operations that start afterwards.
func SetPolicy(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	policy.Lock()
	policy.p, policy.err, policy.resolved = p, nil, true
	policy.Unlock()
	return nil
}

// CurrentPolicy returns the policy operations use now, and the error of a
// bad environment override (then DefaultPolicy is returned).
func CurrentPolicy() (Policy, error) {
	policy.Lock()
	defer policy.Unlock()
	if !policy.resolved {
		policy.p, policy.err = PolicyFromEnv()
		if policy.err != nil {
			policy.p = DefaultPolicy()
		}
		policy.resolved = true
	}
	return policy.p, policy.err
}

// pause returns the jittered pause before attempt+1.
func (p Policy) pause(attempt int) time.Duration {
	bound := p.Backoff
	for i := 1; i < attempt && bound < p.MaxBackoff; i++ {
		bound *= 2
	}
	bound = min(bound, p.MaxBackoff)
	if bound <= 0 {
		return 0
	}
	return rand.N(bound + 1)
}

// RetryStatus is a snapshot of this process's retrying on object storage.
type RetryStatus struct {
	// Waiting is the number of operations that failed an attempt and are
	// pausing or trying again right now.
	Waiting int
	// Retries counts every retry since the process started.
	Retries int64
	// GaveUp counts the operations that ran out of attempts or time.
	GaveUp int64
	// LastError is the newest error that caused a retry ("" if none).
	LastError string
}

var retryStats struct {
	waiting atomic.Int64
	retries atomic.Int64
	gaveUp  atomic.Int64
	last    atomic.Pointer[string]
}

// Retrying returns the process-wide retry status; it is cheap enough to
// call on every progress tick.
func Retrying() RetryStatus {
	s := RetryStatus{
		Waiting: int(retryStats.waiting.Load()),
		Retries: retryStats.retries.Load(),
		GaveUp:  retryStats.gaveUp.Load(),
	}
	if p := retryStats.last.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

// noteRetry records that err is about to be retried.
func noteRetry(err error) {
	retryStats.retries.Add(1)
	msg := err.Error()
	retryStats.last.Store(&msg)
}

// ErrGaveUp is wrapped by the error of an operation that ran out of
// attempts or time; the same error also wraps the last attempt's error.
var ErrGaveUp = errors.New("storage: gave up")

// errRetryable marks an error of ours that a new attempt may cure (a
// checksum mismatch after a write of bytes we still hold); see curable.
var errRetryable = errors.New("retryable")

// curable wraps an error so that retryable accepts it, without changing
// its message.
type curable struct{ error }

func (e curable) Unwrap() error        { return e.error }
func (e curable) Is(target error) bool { return target == errRetryable }

// retryable reports whether a later attempt may succeed where err failed.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errRetryable) || gcs.ShouldRetry(err) {
		return true
	}
	// The client's checksum check of a whole-object read: the bytes were
	// damaged on the way, and a new read may bring them intact.
	return strings.Contains(err.Error(), "bad CRC on read")
}

// retry runs op until it succeeds, fails with an error retrying cannot
// cure, or the policy's attempts or time run out; then the error says so and
// wraps ErrGaveUp and the last attempt's error. op gets a context bounded by
// the policy's timeout and the attempt number (from 1). what, if not
// empty, starts that error ("page 3"); callers that wrap it with the
// operation and object pass "".
func retry(ctx context.Context, what string, op func(ctx context.Context, attempt int) error) error {
	p, err := CurrentPolicy()
	if err != nil {
		return err
	}
	start := time.Now()
	octx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	waiting := false
	defer func() {
		if waiting {
			retryStats.waiting.Add(-1)
		}
	}()
	var last error
	for attempt := 1; ; attempt++ {
		err := op(octx, attempt)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err // the caller gave up: its error, not ours
		}
		timedOut := octx.Err() != nil
		if !timedOut && !retryable(err) {
			return err
		}
		if !timedOut || last == nil {
			last = err
		}
		if timedOut || attempt >= p.Attempts {
			return gaveUp(what, attempt, time.Since(start), p, last)
		}
		noteRetry(err)
		if !waiting {
			waiting = true
			retryStats.waiting.Add(1)
		}
		t := time.NewTimer(p.pause(attempt))
		select {
		case <-t.C:
		case <-octx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return err
			}
			return gaveUp(what, attempt, time.Since(start), p, last)
		}
	}
}

func gaveUp(what string, attempts int, elapsed time.Duration, p Policy, last error) error {
	retryStats.gaveUp.Add(1)
	err := fmt.Errorf("%w after %d attempt(s) in %s (limit %d attempts, %s): last error: %w",
		ErrGaveUp, attempts, elapsed.Round(time.Millisecond), p.Attempts, p.Timeout, last)
	if what != "" {
		err = fmt.Errorf("%s: %w", what, err)
	}
	return err
}
