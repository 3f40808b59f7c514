//go:build unix

package augment

import "syscall"

// processCPU returns the user+system CPU time this process has used, in
// nanoseconds. Benchmarks report it beside wall time because the shared
// machines they run on make wall time swing with other people's load.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
