package evaluate

import (
	"flag"
	"log/slog"
	"os"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// TestMain initialises Beam, as the sslight binary does before dispatching
// a sub-command.
func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init()
	// Prism logs each job step at INFO; keep test and benchmark output readable.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}
