package gcsemutest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/sslight-go/sslight/infra/gcsemu"
)

// Kind is a fault the proxy injects.
type Kind string

// The faults. Each imitates something GCS or the network does.
const (
	// Unavailable answers 503 without forwarding the request.
	Unavailable Kind = "503"
	// TooManyRequests answers 429 without forwarding the request.
	TooManyRequests Kind = "429"
	// ErrorAfterCommit forwards the request, so the emulator does the work
	// (stores the upload, deletes the object), then answers 500: the answer
	// is lost, the effect is not.
	ErrorAfterCommit Kind = "500-after-body"
	// Delay holds the request for Rule.Delay, then forwards it.
	Delay Kind = "delay"
	// Cut cuts the connection mid-body: a request that carries a body
	// (an upload) is cut after half of it arrived and never forwarded;
	// otherwise the answer is cut after half of its body was sent (an
	// answer without a body is dropped whole, after the request was
	// carried out).
	Cut Kind = "cut"
	// Corrupt flips one byte in the middle of an upload body of at least
	// 4 KiB (the media, not the multipart header) and forwards it: the
	// store then holds other bytes than the client sent.
	Corrupt Kind = "corrupt"
)

// Kinds lists every Kind but Corrupt, which damages data instead of
// delaying it (a store that silently corrupts is not one a retry policy is
// tested against, but the checksum check is).
var Kinds = []Kind{Unavailable, TooManyRequests, ErrorAfterCommit, Delay, Cut}

// Rule injects Kind into the requests it matches with probability P
// (1: every one, a permanently failing object).
type Rule struct {
	Kind Kind
	// Method matches the HTTP method ("" any).
	Method string
	// Path matches the request's path and query ("" any), e.g.
	// "uploadType=resumable" or "^/upload/".
	Path string
	// Object matches the object name the request is about, whichever of
	// the JSON, XML and upload forms it takes ("" any).
	Object string
	P      float64
	// Delay is how long a Delay fault holds the request.
	Delay time.Duration
}

type compiledRule struct {
	Rule
	path, object *regexp.Regexp
}

// Proxy is an HTTP proxy in front of an emulator that injects faults by
// rule. Which requests fail is a function of the seed, the rule, the
// request (method, path, object name) and how many times that request was
// seen, not of timing, so a run is reproducible as far as each object's
// own requests go.
type Proxy struct {
	Server   *fakestorage.Server // the emulator behind the proxy
	upstream *url.URL
	front    *httptest.Server
	seed     uint64
	client   *http.Client

	mu    sync.Mutex
	rules []compiledRule
	seen  map[string]uint64

	requests atomic.Int64
	injected sync.Map // Kind → *atomic.Int64
}

// StartFaulty runs an emulator holding buckets behind a fault-injecting
// proxy, points STORAGE_EMULATOR_HOST at the proxy for the rest of the test
// and stops both at the end. It starts with no rules: SetRules turns
// faults on.
func StartFaulty(t testing.TB, seed uint64, buckets ...string) *Proxy {
	t.Helper()
	e, err := gcsemu.Start(buckets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	up, err := url.Parse(e.Server.URL())
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Server: e.Server, upstream: up, seed: seed, seen: map[string]uint64{},
		client: &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}}
	p.front = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.front.Close)
	// Registered after e.Stop, so it runs before it: the variable ends
	// restored by e.Stop.
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(p.front.URL, "http://"))
	return p
}

// SetRules replaces the rules (none: a transparent proxy) and returns an
// error for a rule that does not compile.
func (p *Proxy) SetRules(rules ...Rule) error {
	cr := make([]compiledRule, len(rules))
	for i, r := range rules {
		cr[i].Rule = r
		var err error
		if r.Path != "" {
			if cr[i].path, err = regexp.Compile(r.Path); err != nil {
				return fmt.Errorf("rule %d path: %w", i, err)
			}
		}
		if r.Object != "" {
			if cr[i].object, err = regexp.Compile(r.Object); err != nil {
				return fmt.Errorf("rule %d object: %w", i, err)
			}
		}
	}
	p.mu.Lock()
	p.rules = cr
	p.mu.Unlock()
	return nil
}

// Requests returns how many requests reached the proxy.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Injected returns how many faults of kind k were injected.
func (p *Proxy) Injected(k Kind) int64 {
	if c, ok := p.injected.Load(k); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// InjectedTotal returns how many faults of any kind were injected.
func (p *Proxy) InjectedTotal() int64 {
	var n int64
	p.injected.Range(func(_, v any) bool { n += v.(*atomic.Int64).Load(); return true })
	return n
}

func (p *Proxy) count(k Kind) {
	c, _ := p.injected.LoadOrStore(k, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

// objectName extracts the object a GCS request is about from the JSON API
// (/storage/v1/b/B/o/NAME[/rewriteTo/...]), download (/download/...),
// upload (?name=NAME) and XML (/B/NAME) forms.
func objectName(r *http.Request) string {
	if n := r.URL.Query().Get("name"); n != "" {
		return n
	}
	p := r.URL.Path
	for _, pre := range []string{"/download/storage/v1/b/", "/storage/v1/b/", "/upload/storage/v1/b/"} {
		if rest, ok := strings.CutPrefix(p, pre); ok {
			if _, obj, ok := strings.Cut(rest, "/o/"); ok {
				obj, _, _ = strings.Cut(obj, "/rewriteTo/")
				return obj
			}
			return ""
		}
	}
	if _, obj, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/"); ok {
		return obj
	}
	return ""
}

// pick returns the rule whose draw hits for this request, if any.
func (p *Proxy) pick(r *http.Request) (compiledRule, bool) {
	obj := objectName(r)
	pathQuery := r.URL.Path + "?" + r.URL.RawQuery
	p.mu.Lock()
	defer p.mu.Unlock()
	key := r.Method + " " + r.URL.Path + " " + obj
	n := p.seen[key]
	p.seen[key] = n + 1
	for i, rule := range p.rules {
		if rule.Method != "" && rule.Method != r.Method ||
			rule.path != nil && !rule.path.MatchString(pathQuery) ||
			rule.object != nil && !rule.object.MatchString(obj) {
			continue
		}
		if rule.P >= 1 || draw(p.seed, uint64(i), key, n) < rule.P {
			return rule, true
		}
	}
	return compiledRule{}, false
}

// draw is a uniform number in [0, 1) fixed by its arguments.
func draw(seed, rule uint64, key string, n uint64) float64 {
	h := fnv.New64a()
	var b [24]byte
	binary.LittleEndian.PutUint64(b[:8], seed)
	binary.LittleEndian.PutUint64(b[8:16], rule)
	binary.LittleEndian.PutUint64(b[16:], n)
	h.Write(b[:])
	h.Write([]byte(key))
	// fnv's low bits mix poorly for short inputs; a final avalanche
	// (splitmix64's) spreads them.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	rule, hit := p.pick(r)
	if hit {
		p.count(rule.Kind)
	}
	switch {
	case hit && (rule.Kind == Unavailable || rule.Kind == TooManyRequests):
		io.Copy(io.Discard, r.Body)
		code := http.StatusServiceUnavailable
		if rule.Kind == TooManyRequests {
			code = http.StatusTooManyRequests
		}
		writeError(w, code, "injected fault")
		return
	case hit && rule.Kind == Cut && hasBody(r):
		half := max(r.ContentLength/2, 1)
		io.CopyN(io.Discard, r.Body, half)
		panic(http.ErrAbortHandler) // the server drops the connection
	case hit && rule.Kind == Delay:
		select {
		case <-time.After(rule.Delay):
		case <-r.Context().Done(): // the client gave up waiting
			return
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "proxy: read request: "+err.Error())
		return
	}
	if hit && rule.Kind == Corrupt && len(body) >= 4096 {
		body[len(body)/2] ^= 0xff
	}
	res, err := p.forward(r, body)
	if err != nil {
		writeError(w, http.StatusBadGateway, "proxy: "+err.Error())
		return
	}
	defer res.Body.Close()
	resBody, err := io.ReadAll(res.Body)
	if err != nil {
		writeError(w, http.StatusBadGateway, "proxy: read answer: "+err.Error())
		return
	}
	if hit && rule.Kind == Cut && len(resBody) == 0 {
		panic(http.ErrAbortHandler) // carried out, and the connection drops before the answer
	}
	if hit && rule.Kind == ErrorAfterCommit {
		writeError(w, http.StatusInternalServerError, "injected fault after the request was carried out")
		return
	}
	for k, vs := range res.Header {
		for _, v := range vs {
			if k == "Location" {
				// Resumable uploads continue at the Location the emulator
				// names: keep them coming through the proxy.
				v = strings.Replace(v, p.upstream.Host, r.Host, 1)
			}
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(resBody)))
	w.WriteHeader(res.StatusCode)
	if hit && rule.Kind == Cut && len(resBody) > 0 {
		w.Write(resBody[:len(resBody)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.Write(resBody)
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || r.ContentLength < 0 && r.Body != http.NoBody
}

func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	u := *p.upstream
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		if k == "Connection" || k == "Keep-Alive" || k == "Transfer-Encoding" {
			continue
		}
		req.Header[k] = vs
	}
	req.ContentLength = int64(len(body))
	return p.client.Do(req)
}

// writeError answers in the JSON error form googleapi parses.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"errors":[{"reason":"backendError","message":%q}]}}`, code, msg, msg)
}
