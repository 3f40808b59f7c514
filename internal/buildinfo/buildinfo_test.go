package buildinfo

import (
	"strings"
	"testing"
)

func TestInfoString(t *testing.T) {
	in := Info{Version: "v1.2.3", Commit: "0123456789ab", Modified: true, Tags: []string{"turbojpeg", "openblas"}}
	if got, want := in.String(), "sslight v1.2.3 (commit 0123456789ab+changes, tags turbojpeg openblas)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if !in.HasTag("openblas") || in.HasTag("cuda") {
		t.Error("HasTag")
	}
	// A test binary has build information too.
	if r := Read(); r.Version == "" || !strings.HasPrefix(r.String(), "sslight ") {
		t.Errorf("Read() = %+v", r)
	}
}
