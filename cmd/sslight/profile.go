package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles starts the profiles named by SSLIGHT_CPUPROFILE and
// SSLIGHT_TRACE (file paths) and returns the function that writes them.
// Profile before optimising: `go tool pprof -top sslight $SSLIGHT_CPUPROFILE`,
// `go tool trace $SSLIGHT_TRACE`.
func startProfiles() (stop func()) {
	var stops []func()
	if path := os.Getenv("SSLIGHT_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err != nil {
			fmt.Fprintf(os.Stderr, "sslight: SSLIGHT_CPUPROFILE: %v\n", err)
		} else if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "sslight: SSLIGHT_CPUPROFILE: %v\n", err)
			f.Close()
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if path := os.Getenv("SSLIGHT_TRACE"); path != "" {
		if f, err := os.Create(path); err != nil {
			fmt.Fprintf(os.Stderr, "sslight: SSLIGHT_TRACE: %v\n", err)
		} else if err := trace.Start(f); err != nil {
			fmt.Fprintf(os.Stderr, "sslight: SSLIGHT_TRACE: %v\n", err)
			f.Close()
		} else {
			stops = append(stops, func() { trace.Stop(); f.Close() })
		}
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
