package infra

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cgoLibPackages maps a library the Go source links (#cgo LDFLAGS: -lNAME)
// to the Debian 12 packages that hold its headers and its shared object
// (checked with dpkg -S on Debian 12 when this table was written).
var cgoLibPackages = map[string]struct{ dev, runtime string }{
	"turbojpeg": {"libturbojpeg0-dev", "libturbojpeg0"},
	"openblas":  {"libopenblas-dev", "libopenblas0"},
}

var (
	buildLine  = regexp.MustCompile(`(?m)^//go:build (.+)$`)
	ldflagLine = regexp.MustCompile(`(?m)^\s*(?://\s*)?#cgo(?:\s+[^:\n]*)?\s+LDFLAGS:(.*)$`)
)

// tagLibraries returns, for each build tag, the libraries that the files
// built under it link, read from the module's non-test Go files.
func tagLibraries(t *testing.T) map[string][]string {
	t.Helper()
	root := repoRoot(t)
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "runs", "bin", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m := buildLine.FindSubmatch(b)
		if m == nil {
			return nil
		}
		var libs []string
		for _, l := range ldflagLine.FindAllSubmatch(b, -1) {
			for _, f := range strings.Fields(string(l[1])) {
				if lib, ok := strings.CutPrefix(f, "-l"); ok {
					libs = append(libs, lib)
				}
			}
		}
		for _, tag := range regexp.MustCompile(`[A-Za-z0-9_.]+`).FindAllString(string(m[1]), -1) {
			if _, seen := out[tag]; !seen {
				out[tag] = nil
			}
			out[tag] = append(out[tag], libs...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// makefileTags returns the build tags the Makefile's TAGS line can select
// (the words its shell snippet echoes).
func makefileTags(t *testing.T) []string {
	t.Helper()
	for _, line := range strings.Split(string(readRepoFile(t, "Makefile")), "\n") {
		if !regexp.MustCompile(`^TAGS\s*[?:]?=`).MatchString(line) {
			continue
		}
		var tags []string
		for _, m := range regexp.MustCompile(`\becho\s+([A-Za-z0-9_ ]+)`).FindAllStringSubmatch(line, -1) {
			tags = append(tags, strings.Fields(m[1])...)
		}
		if len(tags) == 0 {
			t.Fatalf("Makefile TAGS line selects no tag: %s", line)
		}
		return tags
	}
	t.Fatal("Makefile has no TAGS line")
	return nil
}

// TestDockerfileBuildStage: the build stage mirrors .ci/run and the
// Makefile, and installs the -dev package of every library its tags link.
func TestDockerfileBuildStage(t *testing.T) {
	d := loadDockerfile(t)
	globals, err := argDefaults(d.Args)
	if err != nil {
		t.Fatal(err)
	}
	beamVersion, goMinor := goModVersions(t)
	if globals["GO_VERSION"] != goMinor {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %s", globals["GO_VERSION"], goMinor)
	}
	if globals["BEAM_VERSION"] != beamVersion {
		t.Errorf("ARG BEAM_VERSION=%s, go.mod pins Beam %s", globals["BEAM_VERSION"], beamVersion)
	}

	build := mustStage(t, d, "build")
	buildArgs, err := argDefaults(build.all("ARG"))
	if err != nil {
		t.Fatal(err)
	}
	tags := strings.Fields(buildArgs["TAGS"])
	if len(tags) == 0 {
		t.Fatal("build stage: ARG TAGS has no default build tags")
	}
	var goBuild string
	for _, in := range build.all("RUN") {
		if strings.Contains(in.Args, "go build") {
			goBuild = in.Args
		}
	}
	for _, want := range []string{"CGO_ENABLED=1", `-tags "${TAGS}"`, "./cmd/sslight", "-o /out/sslight"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("build stage: the go build line %q lacks %q", goBuild, want)
		}
	}

	apt := stageApt(t, build)
	libs := tagLibraries(t)
	for _, tag := range tags {
		tl, ok := libs[tag]
		if !ok {
			t.Errorf("build tag %q of the Dockerfile selects no file of this module", tag)
			continue
		}
		if len(tl) == 0 {
			t.Errorf("build tag %q links no library (#cgo LDFLAGS: -l...): why is it in the image?", tag)
		}
		for _, lib := range tl {
			pk, ok := cgoLibPackages[lib]
			if !ok {
				t.Errorf("tag %q links -l%s: add its Debian packages to cgoLibPackages", tag, lib)
				continue
			}
			if !apt[pk.dev] {
				t.Errorf("build stage does not install %s, which -tags %s needs (-l%s)", pk.dev, tag, lib)
			}
		}
	}
	for _, tag := range makefileTags(t) {
		if !contains(tags, tag) {
			t.Errorf("the Makefile can build with -tags %s but the Dockerfile's TAGS (%v) lack it", tag, tags)
		}
	}

	// .ci/run installs the C toolchain and the -dev packages the tests build
	// against; the image build needs all of them too. (Its test-only
	// packages: make, python3-numpy, dataset-fashion-mnist, stay out.)
	ci, err := aptInstallPackages(string(readRepoFile(t, ".ci/run")))
	if err != nil {
		t.Fatal(err)
	}
	if len(ci) == 0 {
		t.Fatal(".ci/run installs no package: the parse is wrong or .ci/run changed")
	}
	for _, p := range ci {
		if p == "gcc" || p == "libc6-dev" || strings.HasSuffix(p, "-dev") {
			if !apt[p] {
				t.Errorf(".ci/run installs %s for the build, the Dockerfile's build stage does not", p)
			}
		}
	}
	// And the other way: a library the Makefile's tags link must be
	// installed by .ci/run, or CI never compiles that path.
	for _, tag := range makefileTags(t) {
		for _, lib := range libs[tag] {
			if pk, ok := cgoLibPackages[lib]; ok && !contains(ci, pk.dev) {
				t.Errorf("the Makefile builds with -tags %s (-l%s) but .ci/run does not install %s", tag, lib, pk.dev)
			}
		}
	}
}

// TestDockerfileRuntimeStages: the trainer installs the runtime packages,
// the worker is the pinned Beam SDK image with the copied libraries on its
// library path, and the flex launcher runs the entry script.
func TestDockerfileRuntimeStages(t *testing.T) {
	d := loadDockerfile(t)
	globals, err := argDefaults(d.Args)
	if err != nil {
		t.Fatal(err)
	}
	beamVersion, _ := goModVersions(t)
	build := mustStage(t, d, "build")
	buildArgs, _ := argDefaults(build.all("ARG"))
	libs := tagLibraries(t)

	trainer := mustStage(t, d, "trainer")
	apt := stageApt(t, trainer)
	for _, tag := range strings.Fields(buildArgs["TAGS"]) {
		for _, lib := range libs[tag] {
			if pk, ok := cgoLibPackages[lib]; ok && !apt[pk.runtime] {
				t.Errorf("trainer stage does not install %s, which the binary links with -tags %s", pk.runtime, tag)
			}
		}
	}
	if !apt["ca-certificates"] {
		t.Error("trainer stage lacks ca-certificates: gs:// needs TLS roots")
	}
	binDest := copyDestFrom(t, trainer, "build", "/out/sslight")
	ep := trainer.all("ENTRYPOINT")
	if len(ep) != 1 {
		t.Fatalf("trainer stage has %d ENTRYPOINTs", len(ep))
	}
	argv, err := execForm(ep[0])
	if err != nil || len(argv) == 0 || argv[0] != binDest {
		t.Errorf("trainer ENTRYPOINT %v, want the copied binary %s first", argv, binDest)
	}
	if uid := trainerUID(t, trainer); uid == "" || uid == "0" {
		t.Errorf("trainer runs as uid %q; want a non-root user created in the image", uid)
	}

	worker := mustStage(t, d, "worker")
	if got, want := expandArgs(worker.Base, globals), "apache/beam_go_sdk:"+beamVersion; got != want {
		t.Errorf("worker stage is FROM %s, want %s (the Beam version in go.mod)", got, want)
	}
	libDir := copyDestFrom(t, worker, "build", "/out/lib/")
	env, err := envOf(worker)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(strings.Split(env["LD_LIBRARY_PATH"], ":"), strings.TrimSuffix(libDir, "/")) {
		t.Errorf("worker LD_LIBRARY_PATH=%q does not hold the copied libraries' folder %s", env["LD_LIBRARY_PATH"], libDir)
	}
	if len(worker.all("ENTRYPOINT")) != 0 || len(worker.all("USER")) != 0 {
		t.Error("worker stage must keep the Beam image's ENTRYPOINT (boot) and user")
	}

	flex := mustStage(t, d, "flex-launcher")
	if flex.Base != "trainer" {
		t.Errorf("flex-launcher is FROM %s, want trainer (the launcher runs the cgo binary)", flex.Base)
	}
	launcher := copyDestFrom(t, flex, "template-launcher", "/opt/google/dataflow/go_template_launcher")
	entry := copyDestFrom(t, flex, "", "infra/dataflow/flex-entry.sh")
	fenv, err := envOf(flex)
	if err != nil {
		t.Fatal(err)
	}
	if fenv["FLEX_TEMPLATE_GO_BINARY"] != entry {
		t.Errorf("FLEX_TEMPLATE_GO_BINARY=%q, want the entry script at %s", fenv["FLEX_TEMPLATE_GO_BINARY"], entry)
	}
	if _, ok := fenv["SSLIGHT_SDK_CONTAINER_IMAGE"]; !ok {
		t.Error("flex-launcher does not pass the worker image to the entry script (SSLIGHT_SDK_CONTAINER_IMAGE)")
	}
	if ep := flex.all("ENTRYPOINT"); len(ep) != 1 {
		t.Errorf("flex-launcher has %d ENTRYPOINTs, want 1", len(ep))
	} else if argv, err := execForm(ep[0]); err != nil || len(argv) != 1 || argv[0] != launcher {
		t.Errorf("flex-launcher ENTRYPOINT %v, want [%s]", argv, launcher)
	}
	if tl := mustStage(t, d, "template-launcher"); !strings.Contains(expandArgs(tl.Base, globals), "go-template-launcher-base") {
		t.Errorf("template-launcher stage is FROM %s, want Google's Go launcher base", expandArgs(tl.Base, globals))
	}
}

// TestDockerfileContext: what the Dockerfile copies from the build context
// exists and is not excluded by infra/Dockerfile.dockerignore.
func TestDockerfileContext(t *testing.T) {
	d := loadDockerfile(t)
	root := repoRoot(t)
	var ignore []string
	for _, l := range strings.Split(string(readRepoFile(t, "infra/Dockerfile.dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			ignore = append(ignore, l)
		}
	}
	needed := []string{"go.mod", "go.sum", "cmd/sslight/main.go", "configs/dino_cnn_sslight.yaml"}
	for _, st := range d.Stages {
		for _, in := range append(st.all("COPY"), st.all("ADD")...) {
			c, err := parseCopy(in)
			if err != nil {
				t.Fatal(err)
			}
			if _, from := c.Flags["from"]; from {
				continue
			}
			for _, src := range c.Srcs {
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(src))); err != nil {
					t.Errorf("Dockerfile line %d copies %s, which is not in the repository", in.Line, src)
				}
				if src != "." {
					needed = append(needed, src)
				}
			}
		}
	}
	for _, p := range needed {
		for _, pat := range ignore {
			for q := p; q != "." && q != "/"; q = path.Dir(q) {
				if ok, _ := path.Match(strings.TrimPrefix(pat, "/"), q); ok {
					t.Errorf("Dockerfile.dockerignore pattern %q excludes %s, which the build needs", pat, p)
				}
			}
		}
	}
}

// copyDestFrom returns the destination of the stage's COPY of src (from
// the stage named from; "" for the build context).
func copyDestFrom(t *testing.T, s *stage, from, src string) string {
	t.Helper()
	for _, in := range s.all("COPY") {
		c, err := parseCopy(in)
		if err != nil {
			t.Fatal(err)
		}
		if c.Flags["from"] == from && len(c.Srcs) == 1 && c.Srcs[0] == src {
			if strings.HasSuffix(c.Dest, "/") && !strings.HasSuffix(src, "/") {
				return c.Dest + path.Base(src)
			}
			return c.Dest
		}
	}
	t.Fatalf("stage %s does not COPY %s from %q", s.Name, src, from)
	return ""
}

// trainerUID returns the uid of the trainer stage's USER, after checking
// that the stage creates that user (Beam panics for a uid without a passwd
// entry).
func trainerUID(t *testing.T, s *stage) string {
	t.Helper()
	users := s.all("USER")
	if len(users) == 0 {
		return ""
	}
	uid, _, _ := strings.Cut(users[len(users)-1].Args, ":")
	created := false
	for _, in := range s.all("RUN") {
		if regexp.MustCompile(`useradd\b[^&;|]*--uid\s+` + regexp.QuoteMeta(uid) + `\b`).MatchString(in.Args) {
			created = true
		}
	}
	if !created {
		t.Errorf("trainer stage runs as uid %s but no RUN creates it (useradd --uid %s)", uid, uid)
	}
	return uid
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
