// Package gcsemu runs an in-process Google Cloud Storage emulator
// (fake-gcs-server) and points the storage client at it, so sslight's
// gs:// paths work without a cloud account: `sslight run --storage
// emulator` and the tests use it (tests through gcsemutest, which can also
// put a fault-injecting proxy in front of it).
package gcsemu

import (
	"fmt"
	"net/url"
	"os"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Emulator is a running in-memory GCS.
type Emulator struct {
	Server  *fakestorage.Server
	prevEnv string
	hadEnv  bool
}

// Start runs an emulator holding the given (empty) buckets and sets
// STORAGE_EMULATOR_HOST for this process until Stop. Objects live in
// memory and vanish on Stop.
func Start(buckets ...string) (*Emulator, error) {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, PublicHost: "127.0.0.1",
	})
	if err != nil {
		return nil, fmt.Errorf("start GCS emulator: %w", err)
	}
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	u, err := url.Parse(srv.URL())
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("emulator URL %q: %w", srv.URL(), err)
	}
	e := &Emulator{Server: srv}
	e.prevEnv, e.hadEnv = os.LookupEnv("STORAGE_EMULATOR_HOST")
	// The storage client wants host:port without a scheme.
	if err := os.Setenv("STORAGE_EMULATOR_HOST", u.Host); err != nil {
		srv.Stop()
		return nil, err
	}
	return e, nil
}

// Host returns the emulator's host:port, the value STORAGE_EMULATOR_HOST
// takes.
func (e *Emulator) Host() string {
	u, _ := url.Parse(e.Server.URL()) // parsed once already in Start
	return u.Host
}

// Stop shuts the emulator down and restores STORAGE_EMULATOR_HOST.
func (e *Emulator) Stop() {
	e.Server.Stop()
	if e.hadEnv {
		os.Setenv("STORAGE_EMULATOR_HOST", e.prevEnv)
	} else {
		os.Unsetenv("STORAGE_EMULATOR_HOST")
	}
}
