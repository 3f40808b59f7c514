// Package buildinfo says which sslight a binary is: its module version,
// commit and build tags, read from the Go build information, for --version
// and for the reports that must say how they were made.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Info is what the Go toolchain stamped into the binary.
type Info struct {
	Version  string // module version, "(devel)" for a plain go build
	Commit   string // VCS revision, shortened; "unknown" without one
	Time     string // commit time, RFC 3339
	Modified bool   // built with uncommitted changes
	Tags     []string
	CGO      bool
}

// Read returns the binary's build information.
func Read() Info {
	in := Info{Version: "(devel)", Commit: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
			if len(in.Commit) > 12 {
				in.Commit = in.Commit[:12]
			}
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		case "-tags":
			if s.Value != "" {
				in.Tags = strings.Split(s.Value, ",")
			}
		case "CGO_ENABLED":
			in.CGO = s.Value == "1"
		}
	}
	return in
}

// String is the one-line form reports carry: "v0.3.1 (commit 0123456789ab,
// tags turbojpeg openblas)".
func (in Info) String() string {
	s := "sslight " + in.Version + " (commit " + in.Commit
	if in.Modified {
		s += "+changes"
	}
	if len(in.Tags) > 0 {
		s += ", tags " + strings.Join(in.Tags, " ")
	}
	return s + ")"
}

// HasTag reports whether the binary was built with the build tag.
func (in Info) HasTag(tag string) bool {
	for _, t := range in.Tags {
		if t == tag {
			return true
		}
	}
	return false
}
