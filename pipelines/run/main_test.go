package run

import (
	"testing"

	"github.com/sslight-go/sslight/internal/beamtest"
)

// TestMain initialises Beam, as the sslight binary does before dispatching
// a sub-command.
func TestMain(m *testing.M) { beamtest.Main(m) }
