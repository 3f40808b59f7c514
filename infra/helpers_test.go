package infra

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the module root: the tests run in infra/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above infra/: %v", err)
	}
	return root
}

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goModVersions returns the Beam module version and the go directive's
// major.minor from go.mod.
func goModVersions(t *testing.T) (beam, goMinor string) {
	t.Helper()
	mod := string(readRepoFile(t, "go.mod"))
	m := regexp.MustCompile(`(?m)^\s*github\.com/apache/beam/sdks/v2 v([0-9][^\s]*)`).FindStringSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/apache/beam/sdks/v2")
	}
	g := regexp.MustCompile(`(?m)^go ([0-9]+\.[0-9]+)`).FindStringSubmatch(mod)
	if g == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1], g[1]
}

func loadDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	d, err := parseDockerfile(readRepoFile(t, "infra/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// mustStage returns the named stage of d or stops the test.
func mustStage(t *testing.T, d *dockerfile, name string) *stage {
	t.Helper()
	s := d.stage(name)
	if s == nil {
		t.Fatalf("infra/Dockerfile has no stage %q", name)
	}
	return s
}

// stageApt returns the packages that a stage's RUN lines install.
func stageApt(t *testing.T, s *stage) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, in := range s.all("RUN") {
		pkgs, err := aptInstallPackages(in.Args)
		if err != nil {
			t.Fatalf("Dockerfile line %d: %v", in.Line, err)
		}
		for _, p := range pkgs {
			out[p] = true
		}
	}
	return out
}

var (
	commandsOnce sync.Once
	commandsVal  map[string]*commandSpec
	commandsErr  error
)

// sslightCommands returns the sub-commands and flags of cmd/sslight, read
// from its Go source.
func sslightCommands(t *testing.T) map[string]*commandSpec {
	t.Helper()
	commandsOnce.Do(func() {
		commandsVal, commandsErr = scanCommands(filepath.Join(repoRoot(t), "cmd", "sslight"))
	})
	if commandsErr != nil {
		t.Fatal(commandsErr)
	}
	return commandsVal
}

// beamFlags returns the pipeline options that the Beam Go SDK registers on
// the global flag set and that sslight's sub-commands take after their own
// flags: the runner choice, the job options, the GCP and Dataflow options.
// It reads the SDK's source in the module cache (go list -m), so it works
// offline whenever the module builds.
func beamFlags(t *testing.T) map[string]flagSpec {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/apache/beam/sdks/v2")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("cannot locate the Beam SDK source (go list -m: %v); skipping the Beam option check", err)
	}
	flags := map[string]flagSpec{}
	for _, rel := range []string{"runners", "options/jobopts", "options/gcpopts", "runners/dataflow"} {
		fl, err := scanFlags(filepath.Join(dir, "go", "pkg", "beam", filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		for n, f := range fl {
			flags[n] = f
		}
	}
	if _, ok := flags["runner"]; !ok {
		t.Fatalf("no --runner among the Beam flags read from %s: the SDK layout changed", dir)
	}
	return flags
}

// yamlDocs splits a multi-document YAML file and decodes each document into
// the value that pick returns for its kind, refusing unknown fields and
// duplicate keys.
func yamlDocs(t *testing.T, rel string, pick func(kind string) any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(t, rel)))
	for i := 0; ; i++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			if i == 0 {
				t.Fatalf("%s: no YAML document", rel)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", rel, i+1, err)
		}
		var head struct {
			Kind string `yaml:"kind"`
		}
		if err := node.Decode(&head); err != nil {
			t.Fatalf("%s: document %d: %v", rel, i+1, err)
		}
		dst := pick(head.Kind)
		if dst == nil {
			t.Fatalf("%s: document %d: unexpected kind %q", rel, i+1, head.Kind)
		}
		// Re-encode and decode strictly: yaml.Node.Decode has no KnownFields.
		b, err := yaml.Marshal(&node)
		if err != nil {
			t.Fatal(err)
		}
		strict := yaml.NewDecoder(bytes.NewReader(b))
		strict.KnownFields(true)
		if err := strict.Decode(dst); err != nil {
			t.Fatalf("%s: document %d (%s): %v", rel, i+1, head.Kind, err)
		}
	}
}

// invocation is one sslight command line found in a document or manifest.
type invocation struct {
	Where string   // file, for messages
	Sub   string   // sub-command
	Args  []string // everything after the sub-command
}

// docInvocations finds the sslight command lines in the fenced code blocks
// of a Markdown file (continuation lines joined).
func docInvocations(t *testing.T, rel string) []invocation {
	t.Helper()
	var out []invocation
	inBlock := false
	var block strings.Builder
	for _, line := range strings.Split(string(readRepoFile(t, rel)), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			if inBlock {
				toks, err := shellWords(block.String())
				if err != nil {
					t.Fatalf("%s: code block: %v", rel, err)
				}
				for _, c := range simpleCommands(toks) {
					for len(c) > 0 && isAssignment(c[0]) {
						c = c[1:]
					}
					if len(c) >= 2 && filepath.Base(c[0]) == "sslight" {
						out = append(out, invocation{Where: rel, Sub: c[1], Args: c[2:]})
					}
				}
				block.Reset()
			}
			inBlock = !inBlock
			continue
		}
		if inBlock {
			block.WriteString(line)
			block.WriteByte('\n')
		}
	}
	return out
}

// flagArgs reads --name[=value] / --name value words; bool flags take no
// separate value. It returns the names in order and the values.
func flagArgs(args []string, isBool func(string) bool) ([]string, map[string]string, error) {
	var names []string
	vals := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return nil, nil, errors.New("unexpected argument " + a)
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasVal && !isBool(name) {
			if i+1 >= len(args) {
				return nil, nil, errors.New("--" + name + " has no value")
			}
			i++
			val = args[i]
		}
		names = append(names, name)
		vals[name] = val
	}
	return names, vals, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
