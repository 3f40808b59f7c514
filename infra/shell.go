package infra

import (
	"fmt"
	"strings"
)

// shellToken is a word or, when Op is set, a control operator (&&, ||, |,
// ;, & or a newline, given as ";").
type shellToken struct {
	Text string
	Op   bool
}

// shellWords splits POSIX shell text into words and control operators the
// way sh would before expansion: single quotes are literal, double quotes
// keep $ and a backslash before $ ` " \ or a newline, a backslash outside
// quotes escapes the next character, and # starts a comment at the start of
// a word. It does not expand anything and knows no redirections, here-docs
// or substitutions beyond keeping their characters in words; that is enough
// to find the commands of a RUN line or a CI script.
func shellWords(s string) ([]shellToken, error) {
	var (
		toks   []shellToken
		word   strings.Builder
		inWord bool
	)
	flush := func() {
		if inWord {
			toks = append(toks, shellToken{Text: word.String()})
			word.Reset()
			inWord = false
		}
	}
	op := func(o string) {
		flush()
		toks = append(toks, shellToken{Text: o, Op: true})
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("shell text ends with a lone backslash")
			}
			i++
			if s[i] != '\n' { // backslash-newline joins lines
				word.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote at byte %d", i)
			}
			word.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && strings.IndexByte("$`\"\\\n", s[j+1]) >= 0 {
					j++
					if s[j] != '\n' {
						word.WriteByte(s[j])
					}
					continue
				}
				word.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated double quote at byte %d", i)
			}
			inWord = true
			i = j
		case c == '#' && !inWord:
			for i+1 < len(s) && s[i+1] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\r':
			flush()
		case c == '\n' || c == ';':
			op(";")
		case c == '&' || c == '|':
			if i+1 < len(s) && s[i+1] == c {
				op(string([]byte{c, c}))
				i++
			} else {
				op(string(c))
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return toks, nil
}

// simpleCommands groups shell tokens into the word lists of simple
// commands, dropping the operators between them and empty commands.
func simpleCommands(toks []shellToken) [][]string {
	var cmds [][]string
	var cur []string
	for _, t := range toks {
		if t.Op {
			if len(cur) > 0 {
				cmds = append(cmds, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, t.Text)
	}
	if len(cur) > 0 {
		cmds = append(cmds, cur)
	}
	return cmds
}

// aptInstallPackages returns, in order, the packages that the apt-get (or
// apt) install commands in shell text install. Leading variable
// assignments, env and sudo are skipped; options are skipped with the value
// of -o and -t; words holding a $ (packages chosen at run time) are left out.
func aptInstallPackages(script string) ([]string, error) {
	toks, err := shellWords(script)
	if err != nil {
		return nil, err
	}
	var pkgs []string
	for _, cmd := range simpleCommands(toks) {
		i := 0
		for i < len(cmd) && (cmd[i] == "sudo" || cmd[i] == "env" || isAssignment(cmd[i])) {
			i++
		}
		if i >= len(cmd) || (cmd[i] != "apt-get" && cmd[i] != "apt") {
			continue
		}
		rest := cmd[i+1:]
		install := -1
		for j := 0; j < len(rest); j++ {
			if rest[j] == "-o" || rest[j] == "-t" {
				j++
				continue
			}
			if !strings.HasPrefix(rest[j], "-") {
				if rest[j] == "install" {
					install = j
				}
				break
			}
		}
		if install < 0 {
			continue
		}
		for j := install + 1; j < len(rest); j++ {
			w := rest[j]
			switch {
			case w == "-o" || w == "-t":
				j++
			case strings.HasPrefix(w, "-"), strings.Contains(w, "$"):
			default:
				pkgs = append(pkgs, w)
			}
		}
	}
	return pkgs, nil
}

// isAssignment reports whether w is a shell variable assignment NAME=value.
func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	if !ok || name == "" {
		return false
	}
	for i, c := range name {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
