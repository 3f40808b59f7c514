package manifest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sslight-go/sslight/sinks/shard"
)

const testHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// Shard names of testHash from Python's uuid.uuid5 (see shard.NameData).
const (
	name00 = "a012f22f-e5ff-5835-85f2-18efb8d9e243.tar"
	name01 = "a12d069a-0dba-5417-bbc1-8bb60bc7755d.tar"
	name10 = "19716b2b-02bd-5cb0-b887-715d8e21c412.tar"
)

// example returns a small, valid manifest with its slices deliberately out
// of order and a time in a non-UTC zone.
func example() *Manifest {
	cet := time.FixedZone("CET", 3600)
	return &Manifest{
		SchemaVersion: SchemaVersion,
		ConfigHash:    testHash,
		Config:        json.RawMessage("{\n  \"DINO\": {\"TEACHER_TEMP\": 0.04},\n  \"SEED\": 0\n}"),
		Seed:          7,
		Epochs:        2,
		Source: Source{
			Format: "imagenet",
			Root:   "gs://in/train",
			Items: []Item{
				{URI: "gs://in/train/dog/b.jpg", Key: "dog_b", Size: 200, Generation: 1700000000000002, Label: 1},
				{URI: "gs://in/train/cat/a.jpg", Key: "cat_a", Size: 100, Generation: 1700000000000001, Label: 0},
				{URI: "gs://in/train/dog/c.jpg", Key: "dog_c", Size: 300, ModTime: time.Date(2024, 5, 6, 8, 9, 10, 0, cet), Label: 1},
				{URI: "gs://in/train/x&y.jpg", Key: "x_y", Size: 0, Label: -1},
			},
		},
		ClassNames: []string{"cat", "dog"},
		Shards: []shard.Info{
			{URI: "gs://out/run/epoch-0001/" + name10, Name: name10, Epoch: 1, Index: 0, Samples: 2, Bytes: 3072, CRC32C: 0x8a9136aa, CRC32CBase64: "ipE2qg==", ConfigHash: testHash},
			{URI: "gs://out/run/epoch-0000/" + name01, Name: name01, Epoch: 0, Index: 1, Samples: 1, Bytes: 2048, CRC32C: 0, CRC32CBase64: "AAAAAA==", ConfigHash: testHash},
			{URI: "gs://out/run/epoch-0000/" + name00, Name: name00, Epoch: 0, Index: 0, Samples: 2, Bytes: 4096, CRC32C: 0xe3069283, CRC32CBase64: "4waSgw==", ConfigHash: testHash},
		},
		EpochCounts: []EpochCount{
			{Epoch: 1, Inputs: 4, Samples: 2, Dead: 2},
			{Epoch: 0, Inputs: 4, Samples: 3, Dead: 1},
		},
		AnnotationRejections: 5,
	}
}

// exampleJSON is example() as Write must lay it out, written by hand.
const exampleJSON = `{
  "schema_version": 1,
  "config_hash": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  "config": {"DINO":{"TEACHER_TEMP":0.04},"SEED":0},
  "seed": 7,
  "epochs": 2,
  "source": {
    "format": "imagenet",
    "root": "gs://in/train",
    "items": [
      {"uri":"gs://in/train/cat/a.jpg","key":"cat_a","size":100,"generation":1700000000000001,"label":0},
      {"uri":"gs://in/train/dog/b.jpg","key":"dog_b","size":200,"generation":1700000000000002,"label":1},
      {"uri":"gs://in/train/dog/c.jpg","key":"dog_c","size":300,"mtime":"2024-05-06T07:09:10Z","label":1},
      {"uri":"gs://in/train/x&y.jpg","key":"x_y","size":0,"label":-1}
    ]
  },
  "class_names": ["cat","dog"],
  "shards": [
    {"uri":"gs://out/run/epoch-0000/a012f22f-e5ff-5835-85f2-18efb8d9e243.tar","name":"a012f22f-e5ff-5835-85f2-18efb8d9e243.tar","epoch":0,"index":0,"samples":2,"bytes":4096,"crc32c":3808858755,"crc32c_base64":"4waSgw==","config_hash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
    {"uri":"gs://out/run/epoch-0000/a12d069a-0dba-5417-bbc1-8bb60bc7755d.tar","name":"a12d069a-0dba-5417-bbc1-8bb60bc7755d.tar","epoch":0,"index":1,"samples":1,"bytes":2048,"crc32c":0,"crc32c_base64":"AAAAAA==","config_hash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
    {"uri":"gs://out/run/epoch-0001/19716b2b-02bd-5cb0-b887-715d8e21c412.tar","name":"19716b2b-02bd-5cb0-b887-715d8e21c412.tar","epoch":1,"index":0,"samples":2,"bytes":3072,"crc32c":2324772522,"crc32c_base64":"ipE2qg==","config_hash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
  ],
  "epoch_counts": [
    {"epoch":0,"inputs":4,"samples":3,"dead":1},
    {"epoch":1,"inputs":4,"samples":2,"dead":2}
  ],
  "totals": {"inputs":8,"samples":5,"dead":3,"shards":3,"bytes":9216},
  "annotation_rejections": 5
}
`

func TestWriteExactLayout(t *testing.T) {
	ctx := context.Background()
	uri := filepath.Join(t.TempDir(), "out", FileName)
	m := example()
	before := example()
	if err := Write(ctx, uri, m); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(uri)
	if string(got) != exampleJSON {
		t.Errorf("manifest.json:\n%s\nwant:\n%s", got, exampleJSON)
	}
	if !reflect.DeepEqual(m, before) {
		t.Error("Write modified the caller's manifest")
	}
	if !json.Valid(got) {
		t.Error("output is not valid JSON")
	}
	// Any input order gives the same bytes.
	m.Shards[0], m.Shards[2] = m.Shards[2], m.Shards[0]
	m.Source.Items[0], m.Source.Items[3] = m.Source.Items[3], m.Source.Items[0]
	uri2 := filepath.Join(t.TempDir(), FileName)
	Write(ctx, uri2, m)
	if got2, _ := os.ReadFile(uri2); string(got2) != string(got) {
		t.Error("input order changed the file")
	}
}

func TestReadRoundTrip(t *testing.T) {
	ctx := context.Background()
	uri := "memfs://manifest/roundtrip/" + FileName
	if err := Write(ctx, uri, example()); err != nil {
		t.Fatal(err)
	}
	m, err := Read(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if m.Totals != (Totals{Inputs: 8, Samples: 5, Dead: 3, Shards: 3, Bytes: 9216}) {
		t.Errorf("totals %+v", m.Totals)
	}
	if m.Shards[0].Name != name00 || m.Shards[2].Name != name10 || m.EpochCounts[0].Epoch != 0 {
		t.Error("slices not sorted")
	}
	if mt := m.Source.Items[2].ModTime; !mt.Equal(time.Date(2024, 5, 6, 7, 9, 10, 0, time.UTC)) {
		t.Errorf("mtime %v", mt)
	}
	if string(m.Config) != `{"DINO":{"TEACHER_TEMP":0.04},"SEED":0}` || m.AnnotationRejections != 5 || m.Seed != 7 {
		t.Errorf("fields lost: %s %d %d", m.Config, m.AnnotationRejections, m.Seed)
	}
	// Writing what was read gives the same file.
	uri2 := "memfs://manifest/roundtrip2/" + FileName
	if err := Write(ctx, uri2, m); err != nil {
		t.Fatal(err)
	}
	m2, _ := Read(ctx, uri2)
	if !reflect.DeepEqual(m, m2) {
		t.Error("second round trip differs")
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *Manifest)
		want   error
	}{
		{"schema version", func(m *Manifest) { m.SchemaVersion = 2 }, ErrSchemaVersion},
		{"no config hash", func(m *Manifest) { m.ConfigHash = "" }, ErrInvalid},
		{"config not an object", func(m *Manifest) { m.Config = json.RawMessage(`[1]`) }, ErrInvalid},
		{"config missing", func(m *Manifest) { m.Config = nil }, ErrInvalid},
		{"zero epochs", func(m *Manifest) { m.Epochs = 0 }, ErrInvalid},
		{"no source format", func(m *Manifest) { m.Source.Format = "" }, ErrInvalid},
		{"duplicate item uri", func(m *Manifest) { m.Source.Items[1].URI = m.Source.Items[0].URI }, ErrInvalid},
		{"duplicate item key", func(m *Manifest) { m.Source.Items[1].Key = m.Source.Items[0].Key }, ErrInvalid},
		{"bad item key", func(m *Manifest) { m.Source.Items[0].Key = "a.b" }, ErrInvalid},
		{"label past class names", func(m *Manifest) { m.Source.Items[0].Label = 2 }, ErrInvalid},
		{"negative size", func(m *Manifest) { m.Source.Items[0].Size = -1 }, ErrInvalid},
		{"shard of another config", func(m *Manifest) { m.Shards[0].ConfigHash = "beef" }, ErrInvalid},
		{"shard name not its uuid", func(m *Manifest) { m.Shards[0].Name = name00 }, ErrInvalid},
		{"shard in the wrong folder", func(m *Manifest) { m.Shards[0].URI = "gs://out/run/epoch-0000/" + name10 }, ErrInvalid},
		{"shard past the epochs", func(m *Manifest) { m.Epochs = 1; m.EpochCounts = m.EpochCounts[1:] }, ErrInvalid},
		{"crc forms disagree", func(m *Manifest) { m.Shards[1].CRC32CBase64 = "AAAAAQ==" }, ErrInvalid},
		{"empty shard", func(m *Manifest) { m.Shards[1].Samples = 0 }, ErrInvalid},
		{"duplicate shard", func(m *Manifest) { m.Shards[1] = m.Shards[2] }, ErrInvalid},
		{"inputs != samples + dead", func(m *Manifest) { m.EpochCounts[0].Dead = 1 }, ErrInvalid},
		{"samples != shard samples", func(m *Manifest) { m.EpochCounts[0].Samples = 3; m.EpochCounts[0].Dead = 1 }, ErrInvalid},
		{"epoch missing", func(m *Manifest) { m.EpochCounts = m.EpochCounts[:1] }, ErrInvalid},
		{"negative rejections", func(m *Manifest) { m.AnnotationRejections = -1 }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := example()
			tt.mutate(m)
			err := Write(context.Background(), "memfs://manifest/invalid/"+FileName, m)
			if !errors.Is(err, tt.want) {
				t.Errorf("Write = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"no version", `{"config_hash":"x"}`, ErrSchemaVersion},
		{"newer version with new fields", `{"schema_version":2,"new_field":true}`, ErrSchemaVersion},
		{"version as a string", `{"schema_version":"1"}`, ErrSchemaVersion},
		{"not JSON", `{"schema_version":1`, ErrInvalid},
		{"unknown field", strings.Replace(exampleJSON, `"seed": 7`, `"seed": 7, "sed": 1`, 1), ErrInvalid},
		{"trailing data", exampleJSON + "{}", ErrInvalid},
		{"totals edited", strings.Replace(exampleJSON, `"dead":3,"shards"`, `"dead":4,"shards"`, 1), ErrInvalid},
		{"count edited", strings.Replace(exampleJSON, `"inputs":4,"samples":3`, `"inputs":5,"samples":3`, 1), ErrInvalid},
	}
	if _, err := Parse([]byte(exampleJSON)); err != nil {
		t.Fatalf("the reference manifest: %v", err)
	}
	for _, tt := range tests {
		if _, err := Parse([]byte(tt.in)); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}
