// Package gcstest starts an in-process GCS emulator (fake-gcs-server) for
// tests of code that reaches gs:// through Beam's filesystem registry.
package gcstest

import (
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/sslight-go/sslight/sinks/gcsemu"
)

// Start runs an emulator holding the given (empty) buckets, points
// STORAGE_EMULATOR_HOST at it for the rest of the test, and stops it at the
// end. Because it sets an environment variable, tests using it cannot run in
// parallel.
func Start(t testing.TB, buckets ...string) *fakestorage.Server {
	t.Helper()
	e, err := gcsemu.Start(buckets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return e.Server
}
