package configs

import (
	"encoding/json"
	"testing"
)

// FuzzParse: no input makes Parse (or Validate) panic, and whatever Parse
// accepts survives YAML → Parse with the same hash, and has valid canonical
// JSON. The seed corpus (testdata/fuzz/FuzzParse) holds the presets, the
// reference's YAMLs and small odd documents.
func FuzzParse(f *testing.F) {
	for _, n := range PresetNames() {
		data, err := PresetYAML(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("TRAIN:\n  BATCH_SIZE: &a 1\nVAL:\n  BATCH_SIZE: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz")
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config and an error")
			}
			return
		}
		_ = c.Validate()
		canon := c.CanonicalJSON()
		if !json.Valid(canon) {
			t.Fatalf("invalid canonical JSON: %s", canon)
		}
		out, err := c.YAML()
		if err != nil {
			t.Fatalf("YAML() of a parsed config: %v", err)
		}
		back, err := Parse(out, "fuzz (written)")
		if err != nil {
			t.Fatalf("Parse(YAML()) failed: %v\n%s", err, out)
		}
		if back.Hash() != c.Hash() {
			t.Fatalf("round trip changed the config:\n%s", describeDiff(t, back.CanonicalJSON(), canon))
		}
	})
}

// FuzzSet: no key/value pair makes Set panic; a successful Set leaves a
// config that round-trips through YAML.
func FuzzSet(f *testing.F) {
	f.Add("MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE", "96")
	f.Add("MULTI_VIEWS_TRANSFORMS.LAMBDAS", "[0.4,0.6]")
	f.Add("SOLVER.BASE_LR", "1e-3")
	f.Add("OUTPUT_DIR", "yes")
	f.Add("USE_FP16", "on")
	f.Add("SOLVER", "x")
	f.Fuzz(func(t *testing.T, key, value string) {
		c := Default()
		before := c.Hash()
		if err := c.Set(key, value); err != nil {
			if c.Hash() != before {
				t.Fatal("failed Set changed the config")
			}
			return
		}
		_ = c.Validate()
		out, err := c.YAML()
		if err != nil {
			t.Fatalf("YAML(): %v", err)
		}
		back, err := Parse(out, "fuzz (written)")
		if err != nil {
			t.Fatalf("Parse(YAML()) after Set(%q, %q): %v\n%s", key, value, err, out)
		}
		if back.Hash() != c.Hash() {
			t.Fatalf("round trip after Set(%q, %q) changed the config:\n%s", key, value, describeDiff(t, back.CanonicalJSON(), c.CanonicalJSON()))
		}
	})
}
