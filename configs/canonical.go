package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strconv"
	"sync"
)

// CanonicalJSON is the config as JSON in one byte-exact form, the input of
// [Config.Hash]:
//
//   - objects have their keys (the YAML key spellings) sorted by byte
//     value, at every level; every key of the schema is present;
//   - no insignificant whitespace;
//   - integers in decimal; floats in the shortest form that reads back to
//     the same float64, written as JavaScript (ES6) and encoding/json write
//     numbers: plain decimal for 1e-6 <= |x| < 1e21, otherwise exponent
//     form such as 1e-7 or 1e+21; a whole float has no fraction (1.0 is 1);
//     -0 is written 0. Non-finite floats, which Parse, Set and Validate
//     all refuse, are written as the strings "NaN", "+Inf", "-Inf";
//   - strings as encoding/json writes them, without HTML escaping;
//   - an empty or nil list is [].
//
// The same values always give the same bytes, whatever the YAML's key order,
// layout, comments or number spelling (0.50 and 5e-1 are the same number).
func (c *Config) CanonicalJSON() []byte {
	return appendCanonical(nil, reflect.ValueOf(c).Elem())
}

// Hash is the hex SHA-256 of [Config.CanonicalJSON]: it changes when any
// value changes and only then. It is stamped into shards, manifests and
// checkpoints.
func (c *Config) Hash() string {
	sum := sha256.Sum256(c.CanonicalJSON())
	return hex.EncodeToString(sum[:])
}

// augmentationView holds exactly the settings that decide the prepared
// multi-crop views of an image; see [Config.AugmentationHash]. It is a
// separate type so that a new MULTI_VIEWS_TRANSFORMS key has to be placed
// here or listed as excluded in the tests on purpose.
type augmentationView struct {
	MultiViews struct {
		GlobalCropsScale         []float64 `yaml:"GLOBAL_CROPS_SCALE"`
		LocalCropsScale          []float64 `yaml:"LOCAL_CROPS_SCALE"`
		LocalCropsNumber         int       `yaml:"LOCAL_CROPS_NUMBER"`
		RandomHorizontalFlipProb []float64 `yaml:"RANDOM_HORIZONTAL_FLIP_PROB"`
		GaussianBlurProb         []float64 `yaml:"GAUSSIAN_BLUR_PROB"`
		ColorJitterProb          []float64 `yaml:"COLOR_JITTER_PROB"`
		ColorJitterIntensity     []float64 `yaml:"COLOR_JITTER_INTENSITY"`
		GreyscaleProb            []float64 `yaml:"GREYSCALE_PROB"`
		CropProb                 []float64 `yaml:"CROP_PROB"`
		LocalCropSize            int       `yaml:"LOCAL_CROP_SIZE"`
		GlobalCropSize           int       `yaml:"GLOBAL_CROP_SIZE"`
		SolarizationProb         []float64 `yaml:"SOLARIZATION_PROB"`
		NmbCrops                 []int     `yaml:"NMB_CROPS"`
	} `yaml:"MULTI_VIEWS_TRANSFORMS"`
	Seed int `yaml:"SEED"`
}

// AugmentationHash is the hex SHA-256 of the canonical JSON (same rules as
// [Config.CanonicalJSON]) of the object
//
//	{"MULTI_VIEWS_TRANSFORMS": {every key except LAMBDAS and CROPS_FOR_ASSIGN}, "SEED": n}
//
// that is, of everything that decides the bytes of the prepared crops:
// crop scales, sizes and counts, flip/blur/jitter/greyscale/solarization
// probabilities and intensities (CROP_PROB, which the reference ignores,
// and NMB_CROPS, which Validate ties to LOCAL_CROPS_NUMBER, are included
// to be safe), and SEED, since every random draw is a function of the seed.
//
// Left out, because they do not change any prepared crop: LAMBDAS and
// CROPS_FOR_ASSIGN (read only by the losses); DATA.MEAN and DATA.STD
// (shards hold uint8 pixels, normalisation happens in the trainer);
// everything about the model, the losses, the optimiser and the run; and
// the data source itself (DATA.PATH_TO_DATA_DIR, DATA.FORMAT,
// DATA.PIXEL_LIMIT, DATA.SHARD_SIZE_MB), which decide which images are
// prepared and how they are grouped, not how an image is cropped — the
// manifest records the source listing. TWO_VIEWS_TRANSFORMS is not used
// for preparation.
//
// The trainer refuses shards whose augmentation hash differs from its own
// config's, and accepts shards prepared under a config that differs only
// in the keys left out here.
func (c *Config) AugmentationHash() string {
	var a augmentationView
	m := &c.MultiViewsTransforms
	a.MultiViews.GlobalCropsScale = m.GlobalCropsScale
	a.MultiViews.LocalCropsScale = m.LocalCropsScale
	a.MultiViews.LocalCropsNumber = m.LocalCropsNumber
	a.MultiViews.RandomHorizontalFlipProb = m.RandomHorizontalFlipProb
	a.MultiViews.GaussianBlurProb = m.GaussianBlurProb
	a.MultiViews.ColorJitterProb = m.ColorJitterProb
	a.MultiViews.ColorJitterIntensity = m.ColorJitterIntensity
	a.MultiViews.GreyscaleProb = m.GreyscaleProb
	a.MultiViews.CropProb = m.CropProb
	a.MultiViews.LocalCropSize = m.LocalCropSize
	a.MultiViews.GlobalCropSize = m.GlobalCropSize
	a.MultiViews.SolarizationProb = m.SolarizationProb
	a.MultiViews.NmbCrops = m.NmbCrops
	a.Seed = c.Seed
	sum := sha256.Sum256(appendCanonical(nil, reflect.ValueOf(a)))
	return hex.EncodeToString(sum[:])
}

// appendCanonical writes v (a struct tree with yaml tags, or a leaf) in the
// canonical form described at CanonicalJSON.
func appendCanonical(b []byte, v reflect.Value) []byte {
	switch v.Kind() {
	case reflect.Struct:
		b = append(b, '{')
		for n, f := range sortedFields(v.Type()) {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, f.quotedKey...)
			b = append(b, ':')
			b = appendCanonical(b, v.Field(f.index))
		}
		return append(b, '}')
	case reflect.Slice:
		b = append(b, '[')
		for i := range v.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, v.Index(i))
		}
		return append(b, ']')
	case reflect.String:
		return appendJSONString(b, v.String())
	case reflect.Int, reflect.Int64:
		return strconv.AppendInt(b, v.Int(), 10)
	case reflect.Float64:
		return appendCanonicalFloat(b, v.Float())
	case reflect.Bool:
		return strconv.AppendBool(b, v.Bool())
	}
	panic("configs: canonical JSON of unsupported kind " + v.Kind().String())
}

// appendCanonicalFloat writes f as ES6 Number.prototype.toString does (the
// rule encoding/json follows), with -0 as 0.
func appendCanonicalFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	case f == 0:
		return append(b, '0') // also -0
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// ES6 writes 1e-7 and 1e+21 where Go writes 1e-07 and 1e+21.
		s := b[start:]
		if n := len(s); n >= 4 && s[n-4] == 'e' && s[n-2] == '0' {
			s[n-2] = s[n-1]
			b = b[:len(b)-1]
		}
	}
	return b
}

// canonicalField is a struct field in canonical key order.
type canonicalField struct {
	quotedKey []byte // `"KEY"`
	index     int
}

var fieldOrder sync.Map // reflect.Type -> []canonicalField

// sortedFields returns t's fields sorted by yaml key, computed once per type.
func sortedFields(t reflect.Type) []canonicalField {
	if f, ok := fieldOrder.Load(t); ok {
		return f.([]canonicalField)
	}
	var fields []canonicalField
	keys := make([]string, t.NumField())
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("canonical") == "-" {
			continue // a run-time choice, not part of what is trained (TRAIN.DEVICE)
		}
		keys[i] = t.Field(i).Tag.Get("yaml")
		fields = append(fields, canonicalField{quotedKey: appendJSONString(nil, keys[i]), index: i})
	}
	sort.Slice(fields, func(i, j int) bool { return keys[fields[i].index] < keys[fields[j].index] })
	fieldOrder.Store(t, fields)
	return fields
}

// appendJSONString quotes s as encoding/json does, minus HTML escaping.
func appendJSONString(b []byte, s string) []byte {
	if plainJSONString(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	var buf jsonBuffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic("configs: encoding a string cannot fail: " + err.Error())
	}
	out := buf.b
	if n := len(out); n > 0 && out[n-1] == '\n' {
		out = out[:n-1]
	}
	return append(b, out...)
}

// plainJSONString reports whether s needs no escaping at all: printable
// ASCII without quote or backslash. Everything else goes through
// encoding/json, whose rules define the canonical form.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

type jsonBuffer struct{ b []byte }

func (w *jsonBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
