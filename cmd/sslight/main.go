// Command sslight pre-trains lightweight vision backbones with
// self-supervised learning (SSLight, ICLR 2023) over Apache Beam pipelines.
//
// Every sub-command lives in its own file and registers itself in init() with
// register; main dispatches on the first argument. A command file does
// flags → options → one call into the packages that do the work → print.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/internal/profiling"
)

// command is one sub-command of the sslight binary.
type command struct {
	name    string
	summary string // one line for the top-level help
	// run parses args (everything after the sub-command name) and does the
	// work. It returns an error worth showing to the user.
	run func(ctx context.Context, args []string) error
}

var commands = map[string]*command{}

// register adds a sub-command; it panics on duplicates (programmer error).
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate sub-command " + c.name)
	}
	commands[c.name] = c
}

func usage() {
	fmt.Fprintf(os.Stderr, `sslight: self-supervised pre-training of lightweight backbones (SSLight, ICLR 2023)

Usage:
  sslight <command> [flags]
  sslight --version

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'sslight <command> --help' for the flags of one command.\n")
}

// unknownCommand is the message for a command name sslight lacks, with the
// closest one suggested.
func unknownCommand(name string) string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	msg := fmt.Sprintf("sslight: unknown command %q", name)
	if s := cli.Suggest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	sort.Strings(names)
	return msg + "\nCommands: " + strings.Join(names, ", ") + " (sslight --help says what each does)"
}

func main() {
	// The binary doubles as its own Beam worker: a runner starts it with
	// --worker and friends, which the global flag set must parse before
	// beam.Init, which then serves the worker and exits. Parsing stops at the
	// sub-command name, so sub-command flags are untouched here.
	flag.Usage = usage
	version := flag.Bool("version", false, "print the version, commit, build tags and whether CUDA is found, and exit")
	flag.Parse()
	beam.Init()

	// Prism logs every job step at INFO through slog; keep the terminal for
	// progress and results unless the user asks (SSLIGHT_LOG=info|debug).
	level := slog.LevelWarn
	if err := level.UnmarshalText([]byte(os.Getenv("SSLIGHT_LOG"))); err != nil {
		level = slog.LevelWarn
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))

	if *version {
		writeVersion(os.Stdout)
		return
	}
	args := flag.Args()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			os.Exit(2)
		}
		return
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintln(os.Stderr, unknownCommand(args[0]))
		os.Exit(2)
	}
	stopProfiles := profiling.Start(os.Stderr)
	err := c.run(context.Background(), args[1:])
	stopProfiles()
	if err != nil {
		if err == flag.ErrHelp {
			return
		}
		fmt.Fprintf(os.Stderr, "sslight %s: %s\n", c.name, strings.TrimSpace(err.Error()))
		os.Exit(1)
	}
}
