// Package cli is the sub-command machinery of the sslight binary: flag
// sets whose help shows their synopsis, description and own flags, and
// that, for sub-commands running a Beam pipeline, also accept every Beam
// pipeline option registered on the global flag set (--runner, --project,
// --endpoint, …) after the sub-command name; and dispatch on a mode name
// (`sslight eval coco`, `sslight bench model`).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// FlagSet is one sub-command's flags plus what its help says.
type FlagSet struct {
	*flag.FlagSet
	name, synopsis, description string
	beam                        bool // the sub-command runs a Beam pipeline
}

// NewFlagSet returns the flag set of sub-command name ("eval coco") that
// runs no pipeline; synopsis follows the name in the usage line.
func NewFlagSet(name, synopsis, description string) *FlagSet {
	fs := &FlagSet{FlagSet: flag.NewFlagSet("sslight "+name, flag.ContinueOnError),
		name: name, synopsis: synopsis, description: description}
	fs.Usage = fs.usage(nil)
	return fs
}

// NewPipelineFlagSet returns the flag set of a sub-command that runs a
// Beam pipeline: Parse also takes the Beam pipeline options.
func NewPipelineFlagSet(name, synopsis, description string) *FlagSet {
	fs := NewFlagSet(name, synopsis, description)
	fs.beam = true
	return fs
}

// usage prints the help: the own flags (all when own is nil), then, for a
// pipeline, a paragraph on the Beam options.
func (fs *FlagSet) usage(own map[string]bool) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: sslight %s %s\n\n%s\n\nFlags:\n", fs.name, fs.synopsis, strings.TrimSpace(fs.description))
		PrintFlags(w, fs.FlagSet, func(f *flag.Flag) bool { return own == nil || own[f.Name] })
		if !fs.beam {
			return
		}
		fmt.Fprintf(w, "\nBeam pipeline options are accepted too (full list: sslight %s --help-beam):\n"+
			"  Prism (default, in-process)  no flags needed\n"+
			"  Direct (legacy, local)       --runner=direct\n"+
			"  Dataflow                     --runner=dataflow --project=P --region=R --staging_location=gs://B/stg\n"+
			"                               --temp_location=gs://B/tmp [--sdk_container_image=IMG --worker_binary=PATH]\n"+
			"  Flink (portable job server)  --runner=flink --endpoint=HOST:8099 --environment_type=DOCKER|LOOPBACK|PROCESS\n", fs.name)
	}
}

// Parse parses args after adding, for a pipeline, the Beam options of the
// global flag set that the sub-command does not shadow (its own flag wins:
// Beam has e.g. --labels for Dataflow job labels) and --help-beam, which
// lists them. --help prints the full help and returns flag.ErrHelp (the
// caller stops); a mistake — an unknown flag (with the closest known one
// suggested), a bad value, an argument left over — returns an error that
// ends with the short usage, instead of the whole help.
func (fs *FlagSet) Parse(args []string) error {
	own := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
	helpBeam := new(bool)
	if fs.beam {
		fs.BoolVar(helpBeam, "help-beam", false, "list every Beam pipeline option and exit")
		flag.CommandLine.VisitAll(func(f *flag.Flag) {
			if fs.Lookup(f.Name) == nil {
				fs.Var(f.Value, f.Name, f.Usage)
			}
		})
	}
	usage := fs.usage(own)
	// The flag package prints the error and the whole help itself; keep it
	// quiet and say it once, shortly, here.
	out := fs.Output()
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.FlagSet.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return flag.ErrHelp
	case err != nil:
		return fs.mistake(err)
	}
	if *helpBeam {
		fmt.Fprintln(os.Stdout, "Beam pipeline options accepted by sslight:")
		PrintFlags(os.Stdout, flag.CommandLine, func(*flag.Flag) bool { return true })
		return flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before it)%s", fs.Arg(0), fs.shortUsage())
	}
	return nil
}

// mistake rewords the flag package's parse errors in the command's terms.
func (fs *FlagSet) mistake(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		hint := ""
		if s := Suggest(name, names); s != "" {
			hint = "; did you mean --" + s + "?"
		}
		return fmt.Errorf("unknown flag --%s%s%s", name, hint, fs.shortUsage())
	}
	// "invalid value "x" for flag -batch-size: …", "flag needs an argument: -out"
	msg = strings.ReplaceAll(msg, " -", " --")
	return fmt.Errorf("%s%s", msg, fs.shortUsage())
}

// shortUsage is the usage line and where the whole help is, for errors.
func (fs *FlagSet) shortUsage() string {
	return fmt.Sprintf("\nUsage: sslight %s %s\n(sslight %s --help lists every flag)", fs.name, fs.synopsis, fs.name)
}

// IsSet reports whether the flag name was given on the command line.
func (fs *FlagSet) IsSet(name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Require reports every flag of names left empty, in one error.
func (fs *FlagSet) Require(names ...string) error {
	var missing []string
	for _, n := range names {
		f := fs.Lookup(n)
		if f == nil {
			panic("cli: Require of an undefined flag --" + n) // programmer error
		}
		if v := f.Value.String(); v == "" || (v == "0" && !fs.IsSet(n)) {
			missing = append(missing, "--"+n)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("missing %s%s", missing[0], fs.shortUsage())
	}
	return fmt.Errorf("missing %s and %s%s", strings.Join(missing[:len(missing)-1], ", "), missing[len(missing)-1], fs.shortUsage())
}

// AtLeast refuses, in one error, every flag of names given on the command
// line with a number below least: "--batch-size 0" must not quietly mean
// "the config's value", as an unset flag does.
func (fs *FlagSet) AtLeast(least int64, names ...string) error {
	var bad []string
	for _, n := range names {
		f := fs.Lookup(n)
		if f == nil {
			panic("cli: AtLeast of an undefined flag --" + n) // programmer error
		}
		if !fs.IsSet(n) {
			continue
		}
		v, err := strconv.ParseFloat(f.Value.String(), 64)
		if err == nil && v < float64(least) {
			bad = append(bad, fmt.Sprintf("--%s %s", n, f.Value.String()))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%s: want at least %d", strings.Join(bad, ", "), least)
}

// PrintFlags lists the flags of fs that keep selects, sorted by name, with
// their usage and default.
func PrintFlags(w io.Writer, fs *flag.FlagSet, keep func(*flag.Flag) bool) {
	var fl []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if keep(f) {
			fl = append(fl, f)
		}
	})
	sort.Slice(fl, func(i, j int) bool { return fl[i].Name < fl[j].Name })
	for _, f := range fl {
		kind, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if kind != "" {
			head += " " + kind
		}
		fmt.Fprintf(w, "%s\n    \t%s", head, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	}
}

// Repeated collects a repeatable string flag (--set A=1 --set B=2).
type Repeated []string

func (r *Repeated) String() string     { return strings.Join(*r, ",") }
func (r *Repeated) Set(v string) error { *r = append(*r, v); return nil }
