package run

import (
	"slices"
	"testing"
)

func TestConfigNames(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"dino_fmnist_baseline", "dino_fmnist_sslight"}, []string{"dino_fmnist_baseline", "dino_fmnist_sslight"}},
		{[]string{"configs/my run.yaml"}, []string{"my_run"}},
		// "dir/...yaml" has base "..": it must not become a folder above
		// the run directory.
		{[]string{"dir/...yaml", "../x/.hidden.yml", "/"}, []string{"config", "hidden", "config-2"}},
		{[]string{"a/x.yaml", "b/x.yaml", "x", "x-2"}, []string{"x", "x-2", "x-3", "x-2-2"}},
		{[]string{"preset:dino_cnn_sslight"}, []string{"preset_dino_cnn_sslight"}},
	} {
		if got := ConfigNames(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("ConfigNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
