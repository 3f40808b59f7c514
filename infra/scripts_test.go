package infra

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func bashPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed; the script checks are skipped")
	}
	return p
}

// TestScriptsSyntax: every script in infra/ parses (bash -n), is
// executable, and stops on errors (set -euo pipefail).
func TestScriptsSyntax(t *testing.T) {
	bash := bashPath(t)
	n := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".sh") {
			return err
		}
		n++
		if out, err := exec.Command(bash, "-n", p).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", p, err, out)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", p)
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(src, []byte("#!/usr/bin/env bash\n")) || !bytes.Contains(src, []byte("\nset -euo pipefail\n")) {
			t.Errorf("%s: want a bash shebang and set -euo pipefail", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("found %d scripts, want launch.sh and flex-entry.sh at least", n)
	}
}

// stubs makes a folder of fake commands that record their working folder
// and arguments in a log, print $STUB_OUTPUT and exit with $STUB_EXIT.
type stubs struct {
	dir, log string
}

func newStubs(t *testing.T, names ...string) *stubs {
	t.Helper()
	s := &stubs{dir: t.TempDir()}
	s.log = filepath.Join(s.dir, "calls.log")
	const body = "#!/usr/bin/env bash\n" +
		"{ printf '%s\\n' \"$(basename \"$0\")\" \"$PWD\" \"$@\"; echo '--end--'; } >> \"$STUB_LOG\"\n" +
		"if [[ -n \"${STUB_OUTPUT:-}\" ]]; then echo \"$STUB_OUTPUT\"; fi\n" +
		"exit \"${STUB_EXIT:-0}\"\n"
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(s.dir, n), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// call is one recorded stub invocation.
type call struct {
	Dir  string
	Argv []string // the command's name, then its arguments
}

func (s *stubs) calls(t *testing.T) []call {
	t.Helper()
	b, err := os.ReadFile(s.log)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []call
	var cur []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "--end--" {
			out = append(out, call{Dir: cur[1], Argv: append([]string{cur[0]}, cur[2:]...)})
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	return out
}

// runScript runs a script of infra/ with exactly env (plus PATH with the
// stubs first and the log), and returns its exit code and output.
func runScript(t *testing.T, s *stubs, script string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bashPath(t), append([]string{script}, args...)...)
	cmd.Env = []string{"PATH=" + s.dir + ":/usr/local/bin:/usr/bin:/bin", "STUB_LOG=" + s.log, "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func TestLaunchScriptSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		want     []string // in stderr (stdout for code 0)
		dontWant []string
	}{
		{"build with nothing set", []string{"build"}, nil, 2,
			[]string{"PROJECT is not set: the Google Cloud project id", "REGION is not set", "REPOSITORY is not set", "BUCKET is not set: gs://"}, nil},
		{"run without source and out", []string{"run"}, map[string]string{"PROJECT": "p", "REGION": "r", "BUCKET": "gs://b"}, 2,
			[]string{"SOURCE is not set", "OUT is not set"}, []string{"PROJECT", "REGION is", "BUCKET is"}},
		{"dry-run without source", []string{"dry-run"}, nil, 2, []string{"SOURCE is not set"}, []string{"PROJECT"}},
		{"no sub-command", nil, nil, 2, []string{"usage: infra/dataflow/launch.sh build|run|dry-run"}, nil},
		{"unknown sub-command", []string{"deploy"}, nil, 2, []string{"usage:"}, nil},
		{"help", []string{"help"}, nil, 0, []string{"REPOSITORY  Artifact Registry path"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStubs(t, "docker", "gcloud", "go")
			code, stdout, stderr := runScript(t, s, "dataflow/launch.sh", tc.env, tc.args...)
			out := stderr
			if tc.code == 0 {
				out = stdout
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			if c := s.calls(t); len(c) != 0 {
				t.Errorf("commands ran before the settings were checked: %v", c)
			}
		})
	}
}

func TestLaunchScriptBuildAndRun(t *testing.T) {
	root := repoRoot(t)
	env := map[string]string{
		"PROJECT": "proj", "REGION": "europe-west4", "REPOSITORY": "reg.example/proj/sslight",
		"BUCKET": "gs://bkt/sslight/", "TAG": "t1",
	}
	worker := "reg.example/proj/sslight/sslight-worker:t1"
	flex := "reg.example/proj/sslight/sslight-flex:t1"
	template := "gs://bkt/sslight/templates/sslight-prepare.json"

	s := newStubs(t, "docker", "gcloud")
	if code, stdout, stderr := runScript(t, s, "dataflow/launch.sh", env, "build"); code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	want := [][]string{
		{"docker", "build", "--platform=linux/amd64", "-f", "infra/Dockerfile", "--target", "worker", "-t", worker, "."},
		{"docker", "build", "--platform=linux/amd64", "-f", "infra/Dockerfile", "--target", "flex-launcher",
			"--build-arg", "SDK_CONTAINER_IMAGE=" + worker, "-t", flex, "."},
		{"docker", "push", worker},
		{"docker", "push", flex},
		{"gcloud", "dataflow", "flex-template", "build", template, "--project=proj", "--image=" + flex,
			"--sdk-language=GO", "--metadata-file=infra/dataflow/metadata.json"},
	}
	calls := s.calls(t)
	checkCalls(t, calls, want, root)

	// The Dockerfile has the targets the script builds.
	d := loadDockerfile(t)
	for _, target := range []string{"worker", "flex-launcher"} {
		mustStage(t, d, target)
	}

	env["SOURCE"], env["OUT"], env["EPOCHS"], env["JOB_NAME"], env["MAX_WORKERS"] = "gs://bkt/in", "gs://bkt/out", "2", "j1", "4"
	s = newStubs(t, "docker", "gcloud")
	if code, stdout, stderr := runScript(t, s, "dataflow/launch.sh", env, "run"); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
	}
	params := "^~^config=dino_cnn_sslight~source=gs://bkt/in~out=gs://bkt/out~epochs=2"
	want = [][]string{{"gcloud", "dataflow", "flex-template", "run", "j1", "--project=proj", "--region=europe-west4",
		"--template-file-gcs-location=" + template, "--staging-location=gs://bkt/sslight/staging",
		"--temp-location=gs://bkt/sslight/tmp", "--parameters=" + params, "--max-workers=4"}}
	checkCalls(t, s.calls(t), want, root)

	// Only parameters the template declares, the required ones included.
	var meta struct {
		Parameters []templateParameter `json:"parameters"`
	}
	if err := json.Unmarshal(readRepoFile(t, "infra/dataflow/metadata.json"), &meta); err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, p := range meta.Parameters {
		declared[p.Name] = true
	}
	given := map[string]bool{}
	for _, kv := range strings.Split(strings.TrimPrefix(params, "^~^"), "~") {
		k, _, _ := strings.Cut(kv, "=")
		given[k] = true
		if !declared[k] {
			t.Errorf("launch.sh run passes parameter %q, which metadata.json does not declare", k)
		}
	}
	for _, r := range flexRequired {
		if !given[r] {
			t.Errorf("launch.sh run does not pass the required parameter %q", r)
		}
	}
}

func checkCalls(t *testing.T, calls []call, want [][]string, root string) {
	t.Helper()
	if len(calls) != len(want) {
		t.Fatalf("%d commands ran, want %d:\n%v", len(calls), len(want), calls)
	}
	for i, c := range calls {
		if !reflect.DeepEqual(c.Argv, want[i]) {
			t.Errorf("command %d:\n got %q\nwant %q", i, c.Argv, want[i])
		}
		if c.Dir != root {
			t.Errorf("command %d ran in %s, want the repository root %s (its paths are relative to it)", i, c.Dir, root)
		}
	}
}

func TestLaunchScriptDryRun(t *testing.T) {
	s := newStubs(t, "sslight")
	bin := filepath.Join(s.dir, "sslight")
	env := map[string]string{"SSLIGHT_BIN": bin, "SOURCE": "/data/fmnist", "FORMAT": "idx", "TAG": "t1",
		"STUB_EXIT": "1", "STUB_OUTPUT": "level=INFO msg=\"Dry-run: not submitting job!\""}
	code, stdout, stderr := runScript(t, s, "dataflow/launch.sh", env, "dry-run")
	if code != 0 || !strings.Contains(stdout, "nothing was submitted") {
		t.Fatalf("dry-run with Beam's dry-run line: exit %d\n%s%s", code, stdout, stderr)
	}
	calls := s.calls(t)
	if len(calls) != 1 {
		t.Fatalf("calls %v", calls)
	}
	argv := calls[0].Argv
	if len(argv) < 2 || argv[1] != "prepare" {
		t.Fatalf("dry-run ran %q, want sslight prepare", argv)
	}
	_, vals, err := flagArgs(argv[2:], func(n string) bool { return n == "quiet" || n == "dry_run" })
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"runner": "dataflow", "dry_run": "", "config": "dino_cnn_sslight", "source": "/data/fmnist",
		"format": "idx", "worker_binary": bin, "sdk_container_image": "example.invalid/sslight/sslight-worker:t1"} {
		if got, ok := vals[k]; !ok || got != v {
			t.Errorf("dry-run passes --%s=%q (given: %v), want %q", k, got, ok, v)
		}
	}
	checkFlagsExist(t, "launch.sh dry-run", argv[2:])

	// Without Beam's line the dry run failed, and says why.
	s = newStubs(t, "sslight")
	env["SSLIGHT_BIN"], env["STUB_OUTPUT"] = filepath.Join(s.dir, "sslight"), "sslight prepare: load config: boom"
	code, _, stderr = runScript(t, s, "dataflow/launch.sh", env, "dry-run")
	if code != 1 || !strings.Contains(stderr, "did not translate") || !strings.Contains(stderr, "boom") {
		t.Errorf("dry-run without Beam's line: exit %d, stderr %q", code, stderr)
	}
}

func TestFlexEntry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		image string
		want  []string
	}{
		{"with worker image", "reg/w:1", []string{"prepare", "--runner=dataflow", "--worker_binary=BIN", "--quiet", "--sdk_container_image=reg/w:1"}},
		{"without", "", []string{"prepare", "--runner=dataflow", "--worker_binary=BIN", "--quiet"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStubs(t, "sslight")
			bin := filepath.Join(s.dir, "sslight")
			launcherArgs := []string{"--config=dino_cnn_sslight", "--source=gs://b/in", "--out=gs://b/out",
				"--runner=DataflowRunner", "--project=p", "--region=r", "--job_name=j", "--staging_location=gs://b/stg"}
			env := map[string]string{"SSLIGHT_BIN": bin}
			if tc.image != "" {
				env["SSLIGHT_SDK_CONTAINER_IMAGE"] = tc.image
			}
			if code, stdout, stderr := runScript(t, s, "dataflow/flex-entry.sh", env, launcherArgs...); code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			calls := s.calls(t)
			if len(calls) != 1 {
				t.Fatalf("calls %v", calls)
			}
			var want []string
			want = append(want, "sslight")
			for _, w := range tc.want {
				want = append(want, strings.ReplaceAll(w, "BIN", bin))
			}
			want = append(want, launcherArgs...)
			if !reflect.DeepEqual(calls[0].Argv, want) {
				t.Errorf("ran\n %q\nwant\n %q", calls[0].Argv, want)
			}
			checkFlagsExist(t, "flex-entry.sh", calls[0].Argv[2:])
		})
	}
}

// checkFlagsExist: every --flag in args is one of sslight prepare's or a
// Beam option.
func checkFlagsExist(t *testing.T, where string, args []string) {
	t.Helper()
	prep := sslightCommands(t)["prepare"]
	beam := beamFlags(t)
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if _, ok := prep.Flags[n]; ok {
			continue
		}
		if _, ok := beam[n]; !ok {
			t.Errorf("%s passes --%s: neither a flag of sslight prepare nor a Beam option", where, n)
		}
	}
}
