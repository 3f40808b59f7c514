package configs

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestCanonicalJSONTiny checks the encoder on a small struct against JSON
// written by hand: sorted keys (byte order, so capitals first), no spaces,
// ES6 number forms, -0 as 0, nil list as [], no HTML escaping.
func TestCanonicalJSONTiny(t *testing.T) {
	type sub struct {
		B bool  `yaml:"b"`
		A int64 `yaml:"a"`
	}
	type tiny struct {
		Zeta   string    `yaml:"zeta"`
		Alpha  int       `yaml:"ALPHA"`
		Floats []float64 `yaml:"FLOATS"`
		Sub    sub       `yaml:"SUB"`
		Ints   []int     `yaml:"INTS"`
		Empty  []float64 `yaml:"EMPTY"`
	}
	tenth, fifth := 0.1, 0.2 // variables: constant arithmetic would be exact
	v := tiny{
		Zeta:   "<a&b> \"q\" é\n",
		Alpha:  -3,
		Floats: []float64{1.0, 0.5, 1e-6, 1e-7, 1e21, 123456789.125, math.Copysign(0, -1), tenth + fifth, -2.5e-10, 0.0048},
		Sub:    sub{B: true, A: 9007199254740993},
		Ints:   []int{2, 6},
	}
	want := `{"ALPHA":-3,"EMPTY":[],"FLOATS":[1,0.5,0.000001,1e-7,1e+21,123456789.125,0,0.30000000000000004,-2.5e-10,0.0048],` +
		`"INTS":[2,6],"SUB":{"a":9007199254740993,"b":true},"zeta":"<a&b> \"q\" é\n"}`
	if got := string(appendCanonical(nil, reflect.ValueOf(v))); got != want {
		t.Errorf("canonical JSON\n got %s\nwant %s", got, want)
	}
}

func TestCanonicalFloat(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {300, "300"}, {0.1, "0.1"},
		{1e-6, "0.000001"}, {9.99e-7, "9.99e-7"}, {1e-7, "1e-7"}, {1.5e-100, "1.5e-100"},
		{1e20, "100000000000000000000"}, {1e21, "1e+21"}, {1.25e22, "1.25e+22"},
		{5e-324, "5e-324"}, {math.MaxFloat64, "1.7976931348623157e+308"},
		{178956970, "178956970"}, {0.0048, "0.0048"},
		{math.NaN(), `"NaN"`}, {math.Inf(1), `"+Inf"`}, {math.Inf(-1), `"-Inf"`},
	} {
		if got := string(appendCanonicalFloat(nil, tc.f)); got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.f, got, tc.want)
		}
	}
}

// leaf is one value of a Config, found by walking the struct tags in the
// test (independently of the package's own schema code).
type leaf struct {
	key string
	v   reflect.Value
}

func leaves(c *Config) []leaf {
	var out []leaf
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			key := t.Field(i).Tag.Get("yaml")
			if prefix != "" {
				key = prefix + "." + key
			}
			if f := v.Field(i); f.Kind() == reflect.Struct {
				walk(key, f)
			} else {
				out = append(out, leaf{key, f})
			}
		}
	}
	walk("", reflect.ValueOf(c).Elem())
	return out
}

// mutations returns edits of v that each change its value.
func mutations(v reflect.Value) []func() {
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		return []func(){func() { v.SetInt(v.Int() + 1) }}
	case reflect.Float64:
		return []func(){func() { v.SetFloat(v.Float() + 0.5) }, func() { v.SetFloat(math.Nextafter(v.Float(), 2)) }}
	case reflect.Bool:
		return []func(){func() { v.SetBool(!v.Bool()) }}
	case reflect.String:
		return []func(){func() { v.SetString(v.String() + "x") }}
	case reflect.Slice:
		grow := func() { v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem()))) }
		if v.Len() == 0 {
			return []func(){grow}
		}
		return []func(){
			grow,
			func() { v.Set(v.Slice(0, v.Len()-1)) },
			func() {
				e := v.Index(0)
				if e.Kind() == reflect.Int {
					e.SetInt(e.Int() + 1)
				} else {
					e.SetFloat(e.Float() + 0.25)
				}
			},
		}
	}
	panic("no mutation for " + v.Kind().String())
}

// TestHashChangesWithEveryField: changing any single value of any key
// changes Hash, and no two such changes collide.
func TestHashChangesWithEveryField(t *testing.T) {
	base, err := Preset("dino_cnn_sslight")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{base.Hash(): "unchanged"}
	n := 0
	for i, l := range leaves(base) {
		if l.key == "TRAIN.DEVICE" {
			continue // left out of the hash on purpose (TestSetEveryKey checks that)
		}
		for j := range mutations(l.v) {
			c := base.Clone()
			mutations(leaves(c)[i].v)[j]()
			h := c.Hash()
			if prev, dup := seen[h]; dup {
				t.Errorf("mutation %d of %s gives the same hash as %s", j, l.key, prev)
			}
			seen[h] = l.key
			n++
		}
	}
	if got := len(leaves(base)); got != len(Keys()) {
		t.Errorf("the test walked %d keys, Keys() has %d", got, len(Keys()))
	}
	if base.Hash() != mustPreset(t, "dino_cnn_sslight").Hash() {
		t.Error("mutating clones changed the original: Clone is shallow")
	}
	t.Logf("%d single-value changes, all with distinct hashes", n)
}

func mustPreset(t testing.TB, name string) *Config {
	t.Helper()
	c, err := Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHashIgnoresFormatting: the same values written differently hash the same.
func TestHashIgnoresFormatting(t *testing.T) {
	a := `SOLVER:
  BASE_LR: 0.5
  TOTAL_EPOCHS: 100
TRAIN: {BATCH_SIZE: 64}
MULTI_VIEWS_TRANSFORMS:
  LAMBDAS: [0.4, 0.6]
  GLOBAL_CROPS_SCALE: [0.3, 1.0]
DIST_BACKEND: gloo
USE_FP16: True
`
	b := `# the same config, spelled differently
---
DIST_BACKEND: "gloo"     # quoted
MULTI_VIEWS_TRANSFORMS:
    GLOBAL_CROPS_SCALE:
        - 3.0e-1
        - 1
    LAMBDAS: [ 0.40, 6e-1 ]
USE_FP16: yes
TRAIN:
    BATCH_SIZE: 0x40
SOLVER: {TOTAL_EPOCHS: 100, BASE_LR: .5}
`
	ca, err := Parse([]byte(a), "a")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := Parse([]byte(b), "b")
	if err != nil {
		t.Fatal(err)
	}
	if ca.Hash() != cb.Hash() {
		t.Errorf("hashes differ:\n%s", describeDiff(t, ca.CanonicalJSON(), cb.CanonicalJSON()))
	}
	if ca.Hash() == Default().Hash() {
		t.Error("the edits did not change the hash")
	}
	// Set with the same values also lands on the same hash.
	c := Default()
	for _, kv := range [][2]string{
		{"SOLVER.BASE_LR", "0.5"}, {"SOLVER.TOTAL_EPOCHS", "100"}, {"TRAIN.BATCH_SIZE", "64"},
		{"MULTI_VIEWS_TRANSFORMS.LAMBDAS", "[0.4,0.6]"}, {"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE", "0.3,1"},
		{"DIST_BACKEND", "gloo"}, {"USE_FP16", "true"},
	} {
		if err := c.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if c.Hash() != ca.Hash() {
		t.Errorf("Set-built config differs:\n%s", describeDiff(t, c.CanonicalJSON(), ca.CanonicalJSON()))
	}
	// nil and empty lists are the same value.
	d1, d2 := Default(), Default()
	d1.Solver.Milestones, d2.Solver.Milestones = nil, []int{}
	if d1.Hash() != d2.Hash() {
		t.Error("nil and empty MILESTONES hash differently")
	}
}

// augmentationKeys are the keys AugmentationHash must cover, by the rule
// documented on it (written out here independently of the code).
func inAugmentation(key string) bool {
	if key == "SEED" {
		return true
	}
	rest, ok := strings.CutPrefix(key, "MULTI_VIEWS_TRANSFORMS.")
	return ok && rest != "LAMBDAS" && rest != "CROPS_FOR_ASSIGN"
}

// TestAugmentationHash: changes exactly when a key that decides the crops
// changes.
func TestAugmentationHash(t *testing.T) {
	base := mustPreset(t, "dino_cnn_sslight")
	covered := 0
	for i, l := range leaves(base) {
		want := inAugmentation(l.key)
		if want {
			covered++
		}
		for j := range mutations(l.v) {
			c := base.Clone()
			mutations(leaves(c)[i].v)[j]()
			if changed := c.AugmentationHash() != base.AugmentationHash(); changed != want {
				t.Errorf("changing %s (mutation %d): augmentation hash changed = %v, want %v", l.key, j, changed, want)
			}
		}
	}
	if covered != 14 { // 13 MULTI_VIEWS_TRANSFORMS keys + SEED
		t.Errorf("%d keys in the augmentation hash, want 14", covered)
	}
	// Every MULTI_VIEWS_TRANSFORMS key is classified on purpose: it is
	// either in augmentationView or one of the two loss-only keys.
	var inView []string
	vt := reflect.TypeFor[augmentationView]().Field(0).Type
	for i := range vt.NumField() {
		inView = append(inView, vt.Field(i).Tag.Get("yaml"))
	}
	mt := reflect.TypeFor[MultiViewsTransforms]()
	for i := range mt.NumField() {
		tag := mt.Field(i).Tag.Get("yaml")
		if slices.Contains(inView, tag) == (tag == "LAMBDAS" || tag == "CROPS_FOR_ASSIGN") {
			t.Errorf("MULTI_VIEWS_TRANSFORMS.%s is misclassified for the augmentation hash", tag)
		}
	}
	// Same crops in the baseline and SSLight DINO/MoCo CNN recipes would be a
	// bug: they differ in scales and local size.
	if mustPreset(t, "dino_cnn_baseline").AugmentationHash() == base.AugmentationHash() {
		t.Error("baseline and SSLight have the same augmentation hash")
	}
	// DINO and MoCo SSLight use identical augmentation, so their shards are
	// interchangeable.
	if mustPreset(t, "moco_cnn_sslight").AugmentationHash() != base.AugmentationHash() {
		t.Error("moco_cnn_sslight and dino_cnn_sslight should share prepared crops")
	}
}

func TestCloneIsDeep(t *testing.T) {
	a := Default()
	b := a.Clone()
	b.Data.Mean[0] = 9
	b.MultiViewsTransforms.NmbCrops[1] = 9
	b.Solver.Milestones[0] = 9
	if a.Data.Mean[0] != 0.485 || a.MultiViewsTransforms.NmbCrops[1] != 6 || a.Solver.Milestones[0] != 60 {
		t.Error("Clone shares list storage with the original")
	}
	if a.Hash() != Default().Hash() {
		t.Error("original changed")
	}
}

// TestCanonicalStringsMatchEncodingJSON: strings are written exactly as
// encoding/json writes them (without HTML escaping), fast path or not.
func TestCanonicalStringsMatchEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "nccl", "env://", "a<b>&c", `q"uote`, `back\slash`, "tab\there", "\x00\x1f\x7f", "é路径", "\u2028\u2029", "\xff"} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(appendJSONString(nil, s)); got != want {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

// TestConcurrentUse: the schema and field-order caches are shared; run
// with -race.
func TestConcurrentUse(t *testing.T) {
	want := mustPreset(t, "dino_vit_sslight").Hash()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				c, err := Preset("dino_vit_sslight")
				if err != nil {
					t.Error(err)
					return
				}
				if c.Hash() != want || c.AugmentationHash() == "" {
					t.Error("hash differs under concurrency")
				}
				if err := c.Set("SEED", "3"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
