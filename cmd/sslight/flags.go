package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// newFlagSet returns a flag set for one sub-command. Besides the
// sub-command's own flags it accepts every Beam pipeline option registered on
// the global flag set (--runner, --project, --region, --endpoint,
// --environment_type, ...), so a user can pass runner options after the
// sub-command name. Help lists the sub-command's flags and then names the
// Beam options in one paragraph.
func newFlagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("sslight "+name, flag.ContinueOnError)
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		fs.Var(f.Value, f.Name, f.Usage)
	})
	fs.Bool("help-beam", false, "list every Beam pipeline option and exit")
	// Everything defined after this point is the sub-command's own flag.
	inherited := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { inherited[f.Name] = true })
	fs.Usage = wrapUsage(fs, name, synopsis, description, inherited)
	return fs
}

// wrapUsage builds the help text: own flags are those not present when the
// set was created (the Beam options and --help-beam).
func wrapUsage(fs *flag.FlagSet, name, synopsis, description string, inherited map[string]bool) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: sslight %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(description))
		printFlags(w, fs, func(f *flag.Flag) bool { return !inherited[f.Name] })
		fmt.Fprintf(w, "\nBeam pipeline options are accepted too (full list: sslight %s --help-beam):\n"+
			"  Prism (default, in-process)  no flags needed\n"+
			"  Direct (legacy, local)       --runner=direct\n"+
			"  Dataflow                     --runner=dataflow --project=P --region=R --staging_location=gs://B/stg\n"+
			"                               --temp_location=gs://B/tmp [--sdk_container_image=IMG --worker_binary=PATH]\n"+
			"  Flink (portable job server)  --runner=flink --endpoint=HOST:8099 --environment_type=DOCKER|LOOPBACK|PROCESS\n", name)
	}
}

func printFlags(w io.Writer, fs *flag.FlagSet, keep func(*flag.Flag) bool) {
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

// parseFlags parses args with fs and handles --help-beam. It returns
// flag.ErrHelp when the caller should stop after printing help.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if hb := fs.Lookup("help-beam"); hb != nil && hb.Value.String() == "true" {
		fmt.Fprintln(os.Stdout, "Beam pipeline options accepted by sslight:")
		printFlags(os.Stdout, flag.CommandLine, func(*flag.Flag) bool { return true })
		return flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before it; see --help)", fs.Arg(0))
	}
	return nil
}
