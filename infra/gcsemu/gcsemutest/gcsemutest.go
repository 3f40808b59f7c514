// Package gcsemutest starts the in-process GCS emulator (infra/gcsemu) for
// tests, optionally behind a proxy that injects the faults object storage
// shows in production (see Proxy).
package gcsemutest

import (
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/sslight-go/sslight/infra/gcsemu"
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
