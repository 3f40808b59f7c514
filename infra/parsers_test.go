package infra

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseDockerfile(t *testing.T) {
	src := `# syntax=docker/dockerfile:1
ARG GO=1.26
ARG BASE

FROM golang:${GO} AS build
RUN apt-get update \
 # a comment inside a continuation is dropped
 && apt-get install -y gcc
COPY --from=x /a /b

from --platform=linux/amd64 debian AS final
ENV A=1 B="two words"
ENV LEGACY some value
ENTRYPOINT ["/bin/app", "run"]
`
	d, err := parseDockerfile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Args) != 2 || d.Args[0].Args != "GO=1.26" || d.Args[1].Line != 3 {
		t.Errorf("global ARGs = %+v", d.Args)
	}
	if len(d.Stages) != 2 {
		t.Fatalf("%d stages, want 2", len(d.Stages))
	}
	b, f := d.Stages[0], d.Stages[1]
	if b.Name != "build" || b.Base != "golang:${GO}" || b.Line != 5 {
		t.Errorf("stage 0 = %+v", b)
	}
	if f.Name != "final" || f.Base != "debian" {
		t.Errorf("stage 1 = %+v", f)
	}
	run := b.all("RUN")
	if len(run) != 1 || run[0].Args != "apt-get update && apt-get install -y gcc" || run[0].Line != 6 {
		t.Errorf("RUN = %+v", run)
	}
	if got := d.stage("final"); got == nil || got.Line != 11 {
		t.Errorf("stage(final) = %+v", got)
	}
	if d.stage("nope") != nil {
		t.Error("stage(nope) found")
	}
	env, err := envOf(&f)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"A": "1", "B": "two words", "LEGACY": "some value"}; !reflect.DeepEqual(env, want) {
		t.Errorf("env = %q, want %q", env, want)
	}
	argv, err := execForm(f.all("ENTRYPOINT")[0])
	if err != nil || !reflect.DeepEqual(argv, []string{"/bin/app", "run"}) {
		t.Errorf("ENTRYPOINT = %q, %v", argv, err)
	}
	defs, err := argDefaults(d.Args)
	if err != nil || !reflect.DeepEqual(defs, map[string]string{"GO": "1.26", "BASE": ""}) {
		t.Errorf("ARG defaults = %q, %v", defs, err)
	}
	if got := expandArgs(b.Base, defs); got != "golang:1.26" {
		t.Errorf("expanded base = %q", got)
	}
	cp, err := parseCopy(b.all("COPY")[0])
	if err != nil || cp.Flags["from"] != "x" || !reflect.DeepEqual(cp.Srcs, []string{"/a"}) || cp.Dest != "/b" {
		t.Errorf("COPY = %+v, %v", cp, err)
	}
}

func TestParseDockerfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown instruction", "FROM a\nRUNN x\n", "line 2: unknown instruction"},
		{"before FROM", "RUN x\nFROM a\n", "line 1: RUN before the first FROM"},
		{"no image", "FROM\n", "line 1: FROM has no arguments"},
		{"bad AS", "FROM a b c d\n", "want FROM image [AS name]"},
		{"heredoc", "FROM a\nRUN <<EOF\necho\nEOF\n", "here-documents"},
		{"escape directive", "# escape=`\nFROM a\n", "escape directive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDockerfile([]byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseCopy(t *testing.T) {
	for _, tc := range []struct {
		args  string
		flags map[string]string
		srcs  []string
		dest  string
	}{
		{"go.mod go.sum ./", map[string]string{}, []string{"go.mod", "go.sum"}, "./"},
		{"--chmod=0755 --link a /b", map[string]string{"chmod": "0755", "link": ""}, []string{"a"}, "/b"},
		{`--from=build ["/out/x y", "/dst"]`, map[string]string{"from": "build"}, []string{"/out/x y"}, "/dst"},
	} {
		c, err := parseCopy(instruction{Cmd: "COPY", Args: tc.args, Line: 1})
		if err != nil {
			t.Errorf("%s: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(c.Flags, tc.flags) || !reflect.DeepEqual(c.Srcs, tc.srcs) || c.Dest != tc.dest {
			t.Errorf("%s: got %+v", tc.args, c)
		}
	}
	if _, err := parseCopy(instruction{Cmd: "COPY", Args: "--from=x onlyone", Line: 4}); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("one-word COPY: error %v", err)
	}
}

func TestShellWords(t *testing.T) {
	w := func(s string) shellToken { return shellToken{Text: s} }
	op := func(s string) shellToken { return shellToken{Text: s, Op: true} }
	for _, tc := range []struct {
		in   string
		want []shellToken
	}{
		{"a  b\tc", []shellToken{w("a"), w("b"), w("c")}},
		{`x 'it''s' "a \"q\" $v \n"`, []shellToken{w("x"), w("its"), w(`a "q" $v \n`)}},
		{"a&&b||c|d;e&f\ng", []shellToken{w("a"), op("&&"), w("b"), op("||"), w("c"), op("|"), w("d"), op(";"), w("e"), op("&"), w("f"), op(";"), w("g")}},
		{"echo a#b # comment\nz", []shellToken{w("echo"), w("a#b"), op(";"), w("z")}},
		{"a\\ b c\\\nd", []shellToken{w("a b"), w("cd")}},
		{`'&&' "|"`, []shellToken{w("&&"), w("|")}},
	} {
		got, err := shellWords(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("shellWords(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `trailing\`} {
		if _, err := shellWords(bad); err == nil {
			t.Errorf("shellWords(%q): no error", bad)
		}
	}
}

func TestAptInstallPackages(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /x",
			[]string{"gcc", "libc6-dev"}},
		{"sudo apt install -o Dpkg::Options::=--force-confold -y a b", []string{"a", "b"}},
		{"apt-get -qq -o X=1 install -y $missing c\napt-get remove d", []string{"c"}},
		{"echo apt-get install x; apt-cache search y", nil},
		{"apt-get update", nil},
	} {
		got, err := aptInstallPackages(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("aptInstallPackages(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseQuantity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
	}{
		{"2", 2}, {"2000m", 2}, {"1.5", 1.5}, {"500m", 0.5},
		{"8Gi", 8 << 30}, {"512Mi", 512 << 20}, {"100M", 1e8}, {"1k", 1000}, {"1e3", 1000}, {"1E", 1e18},
	} {
		got, err := parseQuantity(tc.in)
		if err != nil || math.Abs(got-tc.want) > 1e-9*tc.want {
			t.Errorf("parseQuantity(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "m", "Gi", "2Gb", "-1", "+1", "abc", "0x10", "1_000", "Inf", "NaN", "2 Gi"} {
		if v, err := parseQuantity(bad); err == nil {
			t.Errorf("parseQuantity(%q) = %v, want an error", bad, v)
		}
	}
}

func TestCheckCron(t *testing.T) {
	for _, ok := range []string{"0 2 * * *", "*/15 0-6,22 1,15 jan-mar MON-fri", "0 0 ? * 7", "@daily", "59 23 31 12 0"} {
		if err := checkCron(ok); err != nil {
			t.Errorf("checkCron(%q): %v", ok, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"0 2 * *", "want 5 fields"},
		{"60 * * * *", "minute"},
		{"0 24 * * *", "hour"},
		{"0 0 0 * *", "day of month"},
		{"0 0 * 13 *", "month"},
		{"0 0 * * 8", "day of week"},
		{"*/0 * * * *", "step"},
		{"5-1 * * * *", "backwards"},
		{"? * * * *", "minute"},
		{"@sometimes", "want 5 fields"},
	} {
		err := checkCron(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkCron(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestScanCommands(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"main.go": `package main
func register(c *command) {}
type command struct{ name string; run func([]string) error }
func main() {}
func common(fs *flagSet) { fs.Bool("quiet", false, "no progress") }
`,
		"a.go": `package main
import "flag"
func init() { register(&command{name: "alpha", run: runAlpha}) }
func runAlpha(args []string) error {
	fs := flag.NewFlagSet("alpha", flag.ContinueOnError)
	fs.String("source", "", "where")
	n := 0
	fs.IntVar(&n, "epochs", 1, "how many")
	fs.Var(nil, "set", "KEY=VALUE")
	fs.Duration("every", 0, "period")
	common(fs)
	fs.String(dynamicName, "", "not a literal: not read")
	return nil
}
`,
		"b.go": `package main
func init() {
	register(&command{name: "beta", run: func(args []string) error {
		var fs flagSet
		fs.BoolVar(new(bool), "once", false, "one pass")
		return nil
	}})
}
`,
		"b_test.go": `package main
func init() { register(&command{name: "gamma", run: runAlpha}) }
`,
	}
	for n, s := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmds, err := scanCommands(dir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := func(c *commandSpec) map[string]string {
		out := map[string]string{}
		for n, f := range c.Flags {
			out[n] = f.Kind
		}
		return out
	}
	if len(cmds) != 2 || cmds["alpha"] == nil || cmds["beta"] == nil {
		t.Fatalf("commands = %v, want alpha and beta (test files are not read)", cmds)
	}
	wantA := map[string]string{"source": "string", "epochs": "int", "set": "value", "every": "duration", "quiet": "bool"}
	if got := kinds(cmds["alpha"]); !reflect.DeepEqual(got, wantA) {
		t.Errorf("alpha flags = %v, want %v", got, wantA)
	}
	if got := kinds(cmds["beta"]); !reflect.DeepEqual(got, map[string]string{"once": "bool"}) {
		t.Errorf("beta flags = %v", got)
	}
	if !strings.HasSuffix(cmds["alpha"].Flags["source"].Pos, "a.go:6:2") {
		t.Errorf("position of --source = %s", cmds["alpha"].Flags["source"].Pos)
	}
	if got := flagNames(cmds["alpha"].Flags); !reflect.DeepEqual(got, []string{"epochs", "every", "quiet", "set", "source"}) {
		t.Errorf("flagNames = %v", got)
	}
}
