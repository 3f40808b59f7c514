package transforms

import (
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		done, total int
		el          time.Duration
		want        string
	}{
		{15, 30, 3 * time.Second, "job [===============               ] 15/30 images  5.0/s  elapsed 3s  ETA 3s "},
		{30, 30, 10 * time.Second, "job [==============================] 30/30 images  3.0/s  elapsed 10s  ETA 0s "},
		{0, 30, time.Second, "job [                              ] 0/30 images  0.0/s  elapsed 1s  ETA ? "},
	}
	for _, tc := range tests {
		if got := ProgressLine("job", "images", tc.done, tc.total, tc.el); got != tc.want {
			t.Errorf("ProgressLine(%d/%d, %v) = %q, want %q", tc.done, tc.total, tc.el, got, tc.want)
		}
	}
}
