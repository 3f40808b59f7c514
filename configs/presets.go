package configs

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// presetFS holds the presets: the reference's experiment YAMLs
// (reformatted and commented, same values) and the Fashion-MNIST demo.
//
//go:embed *.yaml
var presetFS embed.FS

// PresetNames lists the embedded presets, sorted, without ".yaml".
func PresetNames() []string {
	entries, err := fs.ReadDir(presetFS, ".")
	if err != nil {
		panic("configs: embedded presets unreadable: " + err.Error())
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// PresetYAML returns the text of a preset, comments included, e.g. to show
// a user or to save beside a run. name may carry ".yaml".
func PresetYAML(name string) ([]byte, error) {
	base := strings.TrimSuffix(name, ".yaml")
	if base == "" || strings.ContainsAny(base, `/\`) {
		return nil, unknownPreset(name)
	}
	data, err := presetFS.ReadFile(base + ".yaml")
	if err != nil {
		return nil, unknownPreset(name)
	}
	return data, nil
}

// Preset parses an embedded preset; errors name it "preset:<name>". The
// presets are valid (the tests check), so Validate only matters after
// overrides.
func Preset(name string) (*Config, error) {
	data, err := PresetYAML(name)
	if err != nil {
		return nil, err
	}
	return Parse(data, "preset:"+strings.TrimSuffix(name, ".yaml"))
}

func unknownPreset(name string) error {
	names := PresetNames()
	msg := fmt.Sprintf("%q (presets: %s)", name, strings.Join(names, ", "))
	best, bestD := "", -1
	lower := strings.ToLower(strings.TrimSuffix(name, ".yaml"))
	for _, n := range names {
		if d := levenshtein(lower, n); bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	if bestD >= 0 && bestD*4 <= len(lower) {
		msg += "; did you mean " + best + "?"
	}
	return fmt.Errorf("%w %s", ErrUnknownPreset, msg)
}
