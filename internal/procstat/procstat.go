// Package procstat reads what the operating system counts about this
// process: its resident-memory high-water mark (Linux's VmHWM, which
// ResetPeakRSS can set back so that one stage's peak is its own) and the
// CPU time it has used. Where a figure cannot be read it is 0, so callers
// report "not measured" rather than fail.
package procstat

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// PeakRSSMiB is the process's resident-set high-water mark in MiB, 0 where
// /proc/self/status is missing or has no VmHWM line.
func PeakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	kb, err := ParseVmHWM(f)
	if err != nil {
		return 0
	}
	return float64(kb) / 1024
}

// ParseVmHWM reads the VmHWM line ("VmHWM:\t  301192 kB") of a
// /proc/<pid>/status file and returns its value in kB.
func ParseVmHWM(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil || kb < 0 || unit != "kB" {
			return 0, fmt.Errorf("proc status: bad VmHWM line %q", sc.Text())
		}
		return kb, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("proc status: %w", err)
	}
	return 0, errors.New("proc status: no VmHWM line")
}

// ResetPeakRSS sets VmHWM back to the current RSS (Linux ≥ 4.0); where
// that is refused the mark stays process-wide.
func ResetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// CPUModel is the processor's model name as /proc/cpuinfo gives it
// ("AMD EPYC 7B13"), or the architecture where that file is missing.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
