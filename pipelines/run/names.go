package run

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// ConfigNames names the folders of configs given as presets or file paths
// ("dino_fmnist_sslight", "configs/my run.yaml"): each base name without
// its extension, made a safe folder name (letters, digits, '.', '_' and '-';
// no leading dot, so "dir/...yaml" cannot name ".." and write outside the
// run directory), and made unique ("a/x.yaml", "b/x.yaml" → x, x-2) so two
// configs never share a folder. Names are settled before anything runs.
func ConfigNames(paths []string) []string {
	names := make([]string, len(paths))
	used := map[string]bool{}
	for i, p := range paths {
		base := path.Base(filepath.ToSlash(p))
		base = strings.TrimSuffix(base, path.Ext(base))
		name := strings.TrimLeft(strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
				return r
			}
			return '_'
		}, base), "._")
		if name == "" {
			name = "config"
		}
		unique := name
		for n := 2; used[unique]; n++ {
			unique = fmt.Sprintf("%s-%d", name, n)
		}
		used[unique] = true
		names[i] = unique
	}
	return names
}
