package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// Mode is one sub-sub-command (`sslight eval coco`).
type Mode struct {
	Summary string
	Run     func(ctx context.Context, args []string) error
}

// ModeSet dispatches a command's first argument to its modes.
type ModeSet struct {
	Command string // "eval"
	Noun    string // what a mode is called in messages ("evaluation mode")
	Header  string // usage lines printed before the list of modes
	Modes   map[string]Mode
	// Fallback, when set, handles arguments that start with a flag
	// (`sslight eval --checkpoint …` has no mode name).
	Fallback func(ctx context.Context, args []string) error
}

// Run runs the mode args[0] names with the rest of args. A help flag
// prints the usage (and, with a Fallback, the fallback's own flags first)
// and returns flag.ErrHelp. Without arguments a ModeSet with a Fallback
// runs it (which says what it is missing); one without prints the usage
// and returns an error. An unknown mode name gets the closest one
// suggested.
func (s *ModeSet) Run(ctx context.Context, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
		if s.Fallback != nil {
			if err := s.Fallback(ctx, []string{"--help"}); err != nil && !errors.Is(err, flag.ErrHelp) {
				return err
			}
			fmt.Fprintln(os.Stderr)
		}
		s.Usage(os.Stderr)
		return flag.ErrHelp
	}
	if len(args) == 0 {
		if s.Fallback != nil {
			return s.Fallback(ctx, nil)
		}
		s.Usage(os.Stderr)
		return fmt.Errorf("missing %s (see sslight %s --help)", s.Noun, s.Command)
	}
	m, ok := s.Modes[args[0]]
	if !ok {
		if s.Fallback != nil && len(args[0]) > 0 && args[0][0] == '-' {
			return s.Fallback(ctx, args)
		}
		names := make([]string, 0, len(s.Modes))
		for n := range s.Modes {
			names = append(names, n)
		}
		hint := ""
		if sug := Suggest(args[0], names); sug != "" {
			hint = fmt.Sprintf("; did you mean %q?", sug)
		}
		return fmt.Errorf("unknown %s %q%s (see sslight %s --help)", s.Noun, args[0], hint, s.Command)
	}
	return m.Run(ctx, args[1:])
}

// Usage prints the header and the modes, sorted by name.
func (s *ModeSet) Usage(w io.Writer) {
	fmt.Fprint(w, s.Header)
	names := make([]string, 0, len(s.Modes))
	for n := range s.Modes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, s.Modes[n].Summary)
	}
	fmt.Fprintf(w, "\nRun 'sslight %s <%s> --help' for its flags.\n", s.Command, s.Noun)
}
