package procstat

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		in   string
		kb   int64
		fail bool
	}{
		{"Name:\tsslight\nVmPeak:\t 1000 kB\nVmHWM:\t  301192 kB\nVmRSS:\t 8220 kB\n", 301192, false},
		{"VmHWM:\t0 kB", 0, false},
		{"VmRSS:\t 8220 kB\n", 0, true},
		{"VmHWM:\t 12 MB\n", 0, true},
		{"VmHWM:\t -5 kB\n", 0, true},
		{"VmHWM:\n", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		kb, err := ParseVmHWM(strings.NewReader(tc.in))
		if (err != nil) != tc.fail || kb != tc.kb {
			t.Errorf("ParseVmHWM(%q) = %d, %v; want %d, fail %v", tc.in, kb, err, tc.kb, tc.fail)
		}
	}
}

func FuzzParseVmHWM(f *testing.F) {
	f.Add("VmHWM:\t  301192 kB\n")
	f.Add("Name:\tx\nVmHWM:\t1 kB\nVmRSS:\t1 kB\n")
	f.Add("VmHWM: 9223372036854775808 kB")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		kb, err := ParseVmHWM(strings.NewReader(s))
		if err == nil && (kb < 0 || !strings.Contains(s, "VmHWM:")) {
			t.Errorf("ParseVmHWM(%q) = %d without error", s, kb)
		}
		if err != nil && kb != 0 {
			t.Errorf("ParseVmHWM(%q) = %d with error %v", s, kb, err)
		}
	})
}

// TestPeakRSSSeesAnAllocation touches 64 MiB and expects the high-water
// mark to cover it (Linux only: elsewhere there is no VmHWM to read).
func TestPeakRSSSeesAnAllocation(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	ResetPeakRSS()
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	if got := PeakRSSMiB(); got < 64 {
		t.Errorf("peak RSS %.1f MiB after touching 64 MiB", got)
	}
	runtime.KeepAlive(buf)
}

// TestCPUSecondsCounts spins until the process's CPU time has grown by
// 50 ms; a clock that does not move fails after 10 s of wall time.
func TestCPUSecondsCounts(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("CPU time is not measured here")
	}
	c0 := CPUSeconds()
	if c0 <= 0 {
		t.Fatalf("CPU seconds %v at the start of a test", c0)
	}
	for start := time.Now(); CPUSeconds()-c0 < 0.05; {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("CPU seconds grew by %.3f over 10 s of spinning", CPUSeconds()-c0)
		}
	}
}

func TestParseMemTotal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"MemTotal:       24683772 kB\nMemFree: 1 kB\n", 24683772 << 10, true},
		{"MemFree: 1 kB\nMemTotal: 2 kB\n", 2048, true},
		{"MemTotal: 12 MB\n", 0, false},
		{"MemTotal: -3 kB\n", 0, false},
		{"", 0, false},
	} {
		got, err := ParseMemTotal(strings.NewReader(c.in))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseMemTotal(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// TestMemoryBytesIsPlausible: on Linux the figure is at least the 64 MiB
// any test machine has and at most what the kernel reports in total.
func TestMemoryBytesIsPlausible(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo")
	}
	if m := MemoryBytes(); m < 64<<20 {
		t.Errorf("MemoryBytes() = %d, want at least 64 MiB", m)
	}
}
