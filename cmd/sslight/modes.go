package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// mode is one sub-sub-command (`sslight eval coco`, `sslight bench model`).
type mode struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

// modeSet dispatches a command's first argument to its modes.
type modeSet struct {
	command string // "eval"
	noun    string // what a mode is called in messages ("evaluation mode")
	header  string // usage lines printed before the list of modes
	modes   map[string]mode
	// fallback, when set, handles arguments that start with a flag
	// (`sslight eval --checkpoint …` has no mode name).
	fallback func(ctx context.Context, args []string) error
}

func (s *modeSet) run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		s.usage(os.Stderr)
		if len(args) == 0 {
			return fmt.Errorf("missing %s (see sslight %s --help)", s.noun, s.command)
		}
		return flag.ErrHelp
	}
	m, ok := s.modes[args[0]]
	if !ok {
		if s.fallback != nil && len(args[0]) > 0 && args[0][0] == '-' {
			return s.fallback(ctx, args)
		}
		return fmt.Errorf("unknown %s %q (see sslight %s --help)", s.noun, args[0], s.command)
	}
	return m.run(ctx, args[1:])
}

func (s *modeSet) usage(w io.Writer) {
	fmt.Fprint(w, s.header)
	names := make([]string, 0, len(s.modes))
	for n := range s.modes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, s.modes[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'sslight %s <%s> --help' for its flags.\n", s.command, s.noun)
}
