package procstat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// MemoryBytes is the memory this process may use: the machine's MemTotal,
// or the cgroup's limit (v2 memory.max, v1 memory.limit_in_bytes) where
// that is lower, as in a container. 0 where neither can be read.
func MemoryBytes() int64 {
	var total int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		total, _ = ParseMemTotal(f)
		f.Close()
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) means no limit.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}

// ParseMemTotal reads the MemTotal line ("MemTotal:  24683772 kB") of
// /proc/meminfo and returns it in bytes.
func ParseMemTotal(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil || kb <= 0 || unit != "kB" {
			return 0, fmt.Errorf("meminfo: bad MemTotal line %q", sc.Text())
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("meminfo: %w", err)
	}
	return 0, fmt.Errorf("meminfo: no MemTotal line")
}
