// Package gcstest starts an in-process GCS emulator (fake-gcs-server) for
// tests of code that reaches gs:// through Beam's filesystem registry.
package gcstest

import (
	"net/url"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Start runs an emulator holding the given (empty) buckets, points
// STORAGE_EMULATOR_HOST at it for the rest of the test, and stops it at the
// end. Because it sets an environment variable, tests using it cannot run in
// parallel.
func Start(t testing.TB, buckets ...string) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme:     "http",
		Host:       "127.0.0.1",
		Port:       0,
		PublicHost: "127.0.0.1",
	})
	if err != nil {
		t.Fatalf("start GCS emulator: %v", err)
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatalf("emulator URL %q: %v", srv.URL(), err)
	}
	// The storage client wants host:port without a scheme.
	t.Setenv("STORAGE_EMULATOR_HOST", u.Host)
	return srv
}
