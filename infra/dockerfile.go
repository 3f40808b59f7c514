package infra

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	Cmd  string // the keyword, upper case: FROM, RUN, COPY, ...
	Args string // the rest, continuation lines joined by a space
	Line int    // 1-based line of the keyword
}

// stage is one build stage: its FROM and the instructions up to the next.
type stage struct {
	Name  string // the AS name; "" when there is none
	Base  string // the image named by FROM, before ARG expansion
	Line  int
	Instr []instruction
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM (the
// only instruction allowed there) and the stages.
type dockerfile struct {
	Args   []instruction
	Stages []stage
}

var dockerKeywords = map[string]bool{
	"ADD": true, "ARG": true, "CMD": true, "COPY": true, "ENTRYPOINT": true,
	"ENV": true, "EXPOSE": true, "FROM": true, "HEALTHCHECK": true,
	"LABEL": true, "MAINTAINER": true, "ONBUILD": true, "RUN": true,
	"SHELL": true, "STOPSIGNAL": true, "USER": true, "VOLUME": true,
	"WORKDIR": true,
}

var (
	// A parser directive other than syntax= changes how the rest is read.
	escapeDirective = regexp.MustCompile(`(?i)^#\s*escape\s*=`)
	// A here-document (RUN <<EOF) spans lines this reader does not join.
	heredoc = regexp.MustCompile(`<<-?["']?[A-Za-z_]`)
)

// parseDockerfile reads a Dockerfile with the default escape character.
// It refuses what it would misread (the escape directive, here-documents)
// and what Docker refuses (unknown instructions, instructions other than ARG
// before the first FROM, a FROM without an image), naming the line.
func parseDockerfile(src []byte) (*dockerfile, error) {
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	d := &dockerfile{}
	var cur strings.Builder
	start, cont := 0, false
	for i, raw := range lines {
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" {
			if escapeDirective.MatchString(trimmed) && len(d.Stages) == 0 && len(d.Args) == 0 && !cont {
				return nil, fmt.Errorf("dockerfile: line %d: the escape directive is not supported", i+1)
			}
			continue // comments and blank lines, also inside continuations
		}
		if !cont {
			start = i + 1
			cur.Reset()
		} else {
			cur.WriteByte(' ')
		}
		body, more := strings.CutSuffix(strings.TrimRight(raw, " \t"), `\`)
		cur.WriteString(strings.TrimSpace(body))
		cont = more
		if cont {
			continue
		}
		if err := d.add(cur.String(), start); err != nil {
			return nil, err
		}
	}
	if cont {
		if err := d.add(cur.String(), start); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// add appends one joined instruction.
func (d *dockerfile) add(text string, line int) error {
	kw, args, _ := strings.Cut(text, " ")
	in := instruction{Cmd: strings.ToUpper(kw), Args: strings.TrimSpace(args), Line: line}
	if !dockerKeywords[in.Cmd] {
		return fmt.Errorf("dockerfile: line %d: unknown instruction %q", line, kw)
	}
	if in.Args == "" {
		return fmt.Errorf("dockerfile: line %d: %s has no arguments", line, in.Cmd)
	}
	if (in.Cmd == "RUN" || in.Cmd == "COPY" || in.Cmd == "ADD") && heredoc.MatchString(in.Args) {
		return fmt.Errorf("dockerfile: line %d: here-documents are not supported", line)
	}
	switch {
	case in.Cmd == "FROM":
		st, err := parseFrom(in)
		if err != nil {
			return err
		}
		d.Stages = append(d.Stages, st)
	case len(d.Stages) == 0:
		if in.Cmd != "ARG" {
			return fmt.Errorf("dockerfile: line %d: %s before the first FROM (only ARG may come there)", line, in.Cmd)
		}
		d.Args = append(d.Args, in)
	default:
		st := &d.Stages[len(d.Stages)-1]
		st.Instr = append(st.Instr, in)
	}
	return nil
}

// parseFrom reads FROM [--platform=...] image [AS name].
func parseFrom(in instruction) (stage, error) {
	f := strings.Fields(in.Args)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		f = f[1:]
	}
	st := stage{Line: in.Line}
	switch {
	case len(f) == 1:
		st.Base = f[0]
	case len(f) == 3 && strings.EqualFold(f[1], "AS"):
		st.Base, st.Name = f[0], f[2]
	default:
		return stage{}, fmt.Errorf("dockerfile: line %d: want FROM image [AS name], got FROM %s", in.Line, in.Args)
	}
	return st, nil
}

// stage returns the stage called name, or nil.
func (d *dockerfile) stage(name string) *stage {
	for i := range d.Stages {
		if d.Stages[i].Name == name {
			return &d.Stages[i]
		}
	}
	return nil
}

// all returns the stage's instructions of one kind, in order.
func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Instr {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// argDefaults returns the defaults that ARG instructions declare
// (ARG NAME=value; a bare ARG NAME declares "").
func argDefaults(args []instruction) (map[string]string, error) {
	out := map[string]string{}
	for _, in := range args {
		words, err := plainWords(in)
		if err != nil {
			return nil, err
		}
		for _, w := range words {
			k, v, _ := strings.Cut(w, "=")
			out[k] = v
		}
	}
	return out, nil
}

// envOf returns the variables that a stage's ENV instructions set, in both
// the ENV k=v k2=v2 and the legacy ENV k value forms.
func envOf(s *stage) (map[string]string, error) {
	out := map[string]string{}
	for _, in := range s.all("ENV") {
		words, err := plainWords(in)
		if err != nil {
			return nil, err
		}
		if len(words) > 0 && !strings.Contains(words[0], "=") {
			out[words[0]] = strings.Join(words[1:], " ")
			continue
		}
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				return nil, fmt.Errorf("dockerfile: line %d: ENV %q is not NAME=value", in.Line, w)
			}
			out[k] = v
		}
	}
	return out, nil
}

// plainWords splits an instruction's arguments into words, refusing
// shell operators (which ARG, ENV, COPY and USER do not have).
func plainWords(in instruction) ([]string, error) {
	toks, err := shellWords(in.Args)
	if err != nil {
		return nil, fmt.Errorf("dockerfile: line %d: %w", in.Line, err)
	}
	words := make([]string, 0, len(toks))
	for _, t := range toks {
		if t.Op {
			return nil, fmt.Errorf("dockerfile: line %d: unexpected %q in %s", in.Line, t.Text, in.Cmd)
		}
		words = append(words, t.Text)
	}
	return words, nil
}

// copySpec is a parsed COPY or ADD.
type copySpec struct {
	Flags map[string]string // --from=build → "from": "build"
	Srcs  []string
	Dest  string
	Line  int
}

// parseCopy reads COPY/ADD [--flag=value...] src... dest, or the JSON form.
func parseCopy(in instruction) (copySpec, error) {
	c := copySpec{Flags: map[string]string{}, Line: in.Line}
	words, err := plainWords(in)
	if err != nil {
		return c, err
	}
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(words[0], "--"), "=")
		c.Flags[k] = v
		words = words[1:]
	}
	if len(words) > 0 && strings.HasPrefix(words[0], "[") {
		rest := in.Args[strings.Index(in.Args, "["):]
		words = nil
		if err := json.Unmarshal([]byte(rest), &words); err != nil {
			return c, fmt.Errorf("dockerfile: line %d: %s JSON form: %w", in.Line, in.Cmd, err)
		}
	}
	if len(words) < 2 {
		return c, fmt.Errorf("dockerfile: line %d: %s needs a source and a destination", in.Line, in.Cmd)
	}
	c.Srcs, c.Dest = words[:len(words)-1], words[len(words)-1]
	return c, nil
}

// execForm reads the JSON (exec) form of ENTRYPOINT, CMD or SHELL.
func execForm(in instruction) ([]string, error) {
	var argv []string
	if err := json.Unmarshal([]byte(in.Args), &argv); err != nil {
		return nil, fmt.Errorf("dockerfile: line %d: %s is not in exec form [\"...\"]: %w", in.Line, in.Cmd, err)
	}
	return argv, nil
}

var argRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expandArgs substitutes $NAME and ${NAME} from vars; unknown names expand
// to "", as in Docker.
func expandArgs(s string, vars map[string]string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := argRef.FindStringSubmatch(m)
		name := sub[1]
		if name == "" {
			name = sub[2]
		}
		return vars[name]
	})
}
