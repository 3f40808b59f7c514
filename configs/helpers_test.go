package configs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// testdataDir holds the fixtures shared with the Python reference script.
const testdataDir = "../testdata/configs"

// expectedFile is written by testdata/configs/refconfig.py from the
// reference's defaults.py and experiment YAMLs (see that script).
type expectedFile struct {
	Defaults map[string]any `json:"defaults"`
	Cases    map[string]struct {
		Canonical          string `json:"canonical"`
		SHA256             string `json:"sha256"`
		AugmentationSHA256 string `json:"augmentation_sha256"`
	} `json:"cases"`
}

func loadExpected(t testing.TB) *expectedFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdataDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expectedFile
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	return &e
}

// flatten turns a canonical JSON document into dotted key -> JSON value
// text, so tests can compare configs key by key and print readable diffs.
func flatten(t testing.TB, canonical []byte) map[string]string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(canonical))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("canonical JSON does not decode: %v\n%s", err, canonical)
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[prefix] = string(b)
	}
	walk("", root)
	return out
}

// diffKeys lists the keys whose values differ between two flattened configs.
func diffKeys(a, b map[string]string) []string {
	var keys []string
	for k, va := range a {
		if vb, ok := b[k]; !ok || va != vb {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// describeDiff explains how two canonical documents differ, key by key.
func describeDiff(t testing.TB, got, want []byte) string {
	g, w := flatten(t, got), flatten(t, want)
	var b bytes.Buffer
	for _, k := range diffKeys(g, w) {
		fmt.Fprintf(&b, "  %s: got %s, want %s\n", k, g[k], w[k])
	}
	if b.Len() == 0 {
		return "  (same values, different bytes)\n  got:  " + string(got) + "\n  want: " + string(want)
	}
	return b.String()
}

func mustParseFile(t testing.TB, path string) *Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, path)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return cfg
}
