package arrows

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const beam = "github.com/apache/beam/"

// goList runs `go list` from the module root with the given arguments and
// returns its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list packages with: %v", err)
	}
	cmd := exec.Command(goBin, append([]string{"list"}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += "\n" + string(ee.Stderr)
		}
		t.Fatalf("go list %s: %s", strings.Join(args, " "), msg)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestNoBeamBelowTransforms lists every package trainer/, augment/ and
// sinks/ link, with and without the cgo build tags, and fails naming the
// module's packages that import Beam directly if any Beam package is
// among them.
func TestNoBeamBelowTransforms(t *testing.T) {
	for _, tags := range []string{"", "turbojpeg openblas"} {
		lines := goList(t, "-deps", "-tags", tags, "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}",
			"./trainer/...", "./augment/...", "./sinks/...")
		linked := 0
		var culprits []string
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			if strings.HasPrefix(f[0], beam) {
				linked++
			}
			if !strings.HasPrefix(f[0], "github.com/sslight-go/sslight/") {
				continue
			}
			for _, imp := range f[1:] {
				if strings.HasPrefix(imp, beam) {
					culprits = append(culprits, f[0]+" imports "+imp)
				}
			}
		}
		if len(lines) < 50 {
			t.Fatalf("tags %q: go list named only %d packages: not the module's tree", tags, len(lines))
		}
		if linked > 0 {
			t.Errorf("tags %q: trainer/, augment/ and sinks/ link %d Beam packages; direct imports: %v", tags, linked, culprits)
		}
	}
}

// TestBeamFilesystemsNotImported: Beam's gcs and memfs filesystems are not
// imported by any package of the module, tests included. Beam's memfs would
// make transforms/beamfs's registration of "memfs" panic, and either would
// be a second storage layer.
func TestBeamFilesystemsNotImported(t *testing.T) {
	banned := []string{beam + "sdks/v2/go/pkg/beam/io/filesystem/gcs", beam + "sdks/v2/go/pkg/beam/io/filesystem/memfs"}
	lines := goList(t, "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}", "./...")
	for _, l := range lines {
		f := strings.Fields(l)
		for _, imp := range f[1:] {
			for _, b := range banned {
				if imp == b {
					t.Errorf("%s imports %s", f[0], imp)
				}
			}
		}
	}
}
