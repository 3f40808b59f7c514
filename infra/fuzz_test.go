package infra

import (
	"os"
	"strings"
	"testing"
)

// FuzzParseDockerfile: the reader never panics, and what it accepts is
// well formed: known keywords, every stage has an image, lines ascend.
func FuzzParseDockerfile(f *testing.F) {
	if src, err := os.ReadFile("Dockerfile"); err == nil {
		f.Add(string(src))
	}
	for _, s := range []string{
		"FROM a AS b\nRUN x \\\n y\n",
		"ARG X=1\nFROM ${X}\nCOPY --from=a [\"/x\", \"/y\"]\nENV A=\"b c\"\n",
		"FROM a\nRUN <<EOF\nEOF\n",
		"# escape=`\nFROM a\n",
		"\\\n\\",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		d, err := parseDockerfile([]byte(src))
		if err != nil {
			return
		}
		last := 0
		for _, in := range d.Args {
			if in.Cmd != "ARG" || in.Line <= last {
				t.Fatalf("global instruction %+v", in)
			}
			last = in.Line
		}
		for _, st := range d.Stages {
			if st.Base == "" || st.Line <= last {
				t.Fatalf("stage %+v after line %d", st, last)
			}
			last = st.Line
			for _, in := range st.Instr {
				if !dockerKeywords[in.Cmd] || in.Cmd == "FROM" || in.Args == "" || in.Line <= last {
					t.Fatalf("instruction %+v after line %d", in, last)
				}
				last = in.Line
				// The helpers return errors, never panic, on what the reader let through.
				switch in.Cmd {
				case "COPY", "ADD":
					_, _ = parseCopy(in)
				case "ENTRYPOINT", "CMD":
					_, _ = execForm(in)
				case "RUN":
					_, _ = aptInstallPackages(in.Args)
				}
			}
			_, _ = envOf(&st)
		}
		_, _ = argDefaults(d.Args)
	})
}

// FuzzShellWords: never panics; on text without quoting or operator
// characters the words are exactly strings.Fields.
func FuzzShellWords(f *testing.F) {
	for _, s := range []string{
		"apt-get install -y a b && echo 'x y' \"z\\\"\"",
		"a\\ b # c\nd",
		"plain words only",
		"x||y|z;&",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := shellWords(s)
		_, _ = aptInstallPackages(s)
		if strings.ContainsAny(s, "'\"\\#&|;\n") {
			return
		}
		if err != nil {
			t.Fatalf("plain text %q: %v", s, err)
		}
		want := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' })
		if len(toks) != len(want) {
			t.Fatalf("shellWords(%q) = %+v, want %q", s, toks, want)
		}
		for i := range toks {
			if toks[i].Op || toks[i].Text != want[i] {
				t.Fatalf("shellWords(%q) = %+v, want %q", s, toks, want)
			}
		}
	})
}

// FuzzParseQuantity and the cron check: never panic; an accepted quantity
// is finite and not negative.
func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"2", "500m", "8Gi", "1e3", "-1", "0x1p3", "Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseQuantity(s)
		if err == nil && (v < 0 || v != v || v > 1e308) {
			t.Fatalf("parseQuantity(%q) = %v", s, v)
		}
		_ = checkCron(s)
	})
}

func FuzzCheckCron(f *testing.F) {
	for _, s := range []string{"0 2 * * *", "*/5 1-3 ? jan-dec sun", "@daily", "1,2,3 * * * */0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = checkCron(s)
	})
}
