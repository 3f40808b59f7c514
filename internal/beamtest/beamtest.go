// Package beamtest is the TestMain of packages whose tests run Beam
// pipelines: it initialises Beam as the sslight binary does before
// dispatching a sub-command, and keeps Prism's per-step INFO logs out of
// test and benchmark output.
package beamtest

import (
	"flag"
	"log/slog"
	"os"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// Main parses flags, initialises Beam, runs the tests and exits.
func Main(m *testing.M) {
	flag.Parse()
	beam.Init()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}
