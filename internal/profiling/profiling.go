// Package profiling starts the Go profiles a user asks for through the
// environment, so that any sslight sub-command can be profiled without a
// flag of its own: SSLIGHT_CPUPROFILE=<file> writes a CPU profile
// (`go tool pprof -top sslight <file>`), SSLIGHT_TRACE=<file> an execution
// trace (`go tool trace <file>`). Profile before optimising.
package profiling

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// The environment variables Start reads.
const (
	CPUProfileEnv = "SSLIGHT_CPUPROFILE"
	TraceEnv      = "SSLIGHT_TRACE"
)

// Start starts the profiles the environment names and returns the function
// that stops them and closes their files. A profile that cannot start is
// reported on warn and left out: profiling never stops the work.
func Start(warn io.Writer) (stop func()) {
	var stops []func()
	for _, p := range []struct {
		env         string
		start       func(io.Writer) error
		stopProfile func()
	}{
		{CPUProfileEnv, pprof.StartCPUProfile, pprof.StopCPUProfile},
		{TraceEnv, trace.Start, trace.Stop},
	} {
		path := os.Getenv(p.env)
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err == nil {
			if err = p.start(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(warn, "sslight: %s: %v\n", p.env, err)
			continue
		}
		stopProfile := p.stopProfile
		stops = append(stops, func() { stopProfile(); f.Close() })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
