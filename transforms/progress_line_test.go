package transforms

import (
	"strings"
	"testing"
	"time"

	"github.com/sslight-go/sslight/sinks/storage"
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

func TestStorageNote(t *testing.T) {
	long := "read gs://b/x.JPEG: googleapi: Error 503: backendError\n" + strings.Repeat("x", 100)
	tests := []struct {
		st   storage.RetryStatus
		want string
	}{
		{storage.RetryStatus{Retries: 12, LastError: "old"}, ""},
		{storage.RetryStatus{Waiting: 2, Retries: 3, LastError: "googleapi: Error 503: backendError"},
			" waiting on storage: 2 retrying (last: googleapi: Error 503: backendError) "},
		// The newline folds to a space; 79 runes are kept and an ellipsis
		// marks the cut.
		{storage.RetryStatus{Waiting: 1, LastError: long},
			" waiting on storage: 1 retrying (last: read gs://b/x.JPEG: googleapi: Error 503: backendError " + strings.Repeat("x", 24) + "…) "},
	}
	for _, tc := range tests {
		if got := StorageNote(tc.st); got != tc.want {
			t.Errorf("StorageNote(%+v) = %q, want %q", tc.st, got, tc.want)
		}
	}
}
