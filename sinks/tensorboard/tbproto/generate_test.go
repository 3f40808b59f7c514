package tbproto

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeMatchesProto regenerates event.pb.go from event.proto
// and compares it with the committed file, where protoc and protoc-gen-go
// are installed (see doc.go); it skips, saying what is missing, elsewhere.
func TestGeneratedCodeMatchesProto(t *testing.T) {
	for _, tool := range []string{"protoc", "protoc-gen-go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH (Debian protobuf-compiler; go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12): %v", tool, err)
		}
	}
	dir := t.TempDir()
	src, err := os.ReadFile("event.proto")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "event.proto"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("protoc", "--go_out=.", "--go_opt=paths=source_relative", "event.proto")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "event.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("event.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	// The header names the tool versions; another protoc-gen-go release may
	// format differently, which the comparison would report as drift.
	if !bytes.Equal(got, want) {
		t.Errorf("event.pb.go is not what event.proto generates: run go generate ./sinks/tensorboard/tbproto")
	}
}
