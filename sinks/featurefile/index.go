package featurefile

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/storage"
)

// IndexFileName is the index's name under a run's output root.
const IndexFileName = "features.json"

// SchemaVersion is the version of Index this package writes and reads.
const SchemaVersion = 1

// Feature modes: what produced the vectors.
const (
	// ModeCheckpoint: a trained backbone loaded from a checkpoint.
	ModeCheckpoint = "checkpoint"
	// ModeRandomInit: a freshly initialised backbone (the random-init
	// baseline).
	ModeRandomInit = "random_init"
	// ModeRawPixels: the flattened normalised pixels of the evaluation view
	// (the raw-pixel baseline).
	ModeRawPixels = "raw_pixels"
)

// Index is features.json: everything a reader needs to trust and use a
// run's parts. It is written after every part, so its presence says the run
// is complete.
type Index struct {
	SchemaVersion int `json:"schema_version"`
	// Dim is the feature dimension of every part.
	Dim int `json:"dim"`
	// Model says what produced the features.
	Model ModelInfo `json:"model"`
	// Transform is the evaluation view the model saw.
	Transform TransformInfo `json:"transform"`
	// Source is the data set the images came from.
	Source SourceInfo `json:"source"`
	// ConfigHash is the hash of the evaluation's configuration.
	ConfigHash string `json:"config_hash"`
	// Classes names the labels (index = label), when the source has them.
	Classes []string `json:"classes,omitempty"`
	// Inputs = Samples + DeadLetters: every input has a feature vector or a
	// line in dead-letter.jsonl.
	Inputs      int64 `json:"inputs"`
	Samples     int64 `json:"samples"`
	DeadLetters int64 `json:"dead_letters"`
	// Files lists the parts, sorted by name.
	Files []FileInfo `json:"files"`
}

// ModelInfo describes the feature extractor.
type ModelInfo struct {
	// Mode is ModeCheckpoint, ModeRandomInit or ModeRawPixels.
	Mode string `json:"mode"`
	// Checkpoint is the checkpoint folder (ModeCheckpoint).
	Checkpoint string `json:"checkpoint,omitempty"`
	// Arch and its options (ModeCheckpoint, ModeRandomInit).
	Arch           string  `json:"arch,omitempty"`
	Width          float64 `json:"width,omitempty"`
	SmallImageStem bool    `json:"small_image_stem,omitempty"`
	PatchSize      int     `json:"patch_size,omitempty"`
	// ConfigHash is the training config's hash and Step the training step
	// (ModeCheckpoint).
	ConfigHash string `json:"config_hash,omitempty"`
	Step       int    `json:"step,omitempty"`
	// Weights says which network of the checkpoint gave the features:
	// "student" or "teacher" (ModeCheckpoint; indexes written before the
	// field existed hold the student's).
	Weights string `json:"weights,omitempty"`
	// Seed is the initialisation seed (ModeRandomInit).
	Seed uint64 `json:"seed,omitempty"`
}

// TransformInfo is the evaluation view: Resize(Resize) of the shorter side,
// CenterCrop(Crop), ToTensor, Normalize(Mean, Std).
type TransformInfo struct {
	Resize int        `json:"resize"`
	Crop   int        `json:"crop"`
	Mean   [3]float32 `json:"mean"`
	Std    [3]float32 `json:"std"`
}

// SourceInfo names the data set.
type SourceInfo struct {
	Format string `json:"format"`
	Root   string `json:"root"`
	Split  string `json:"split,omitempty"`
}

// Validate checks the index's own consistency: schema, mode, dimension,
// unique sorted part names, and the counts (parts' samples add up to
// Samples, Samples + DeadLetters = Inputs).
func (ix *Index) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: index: %s", ErrFormat, fmt.Sprintf(format, args...))
	}
	switch {
	case ix.SchemaVersion != SchemaVersion:
		return bad("schema_version %d, this reader knows %d", ix.SchemaVersion, SchemaVersion)
	case ix.Dim < 1:
		return bad("dim %d, want at least 1", ix.Dim)
	case ix.Model.Mode != ModeCheckpoint && ix.Model.Mode != ModeRandomInit && ix.Model.Mode != ModeRawPixels:
		return bad("model mode %q, want %s, %s or %s", ix.Model.Mode, ModeCheckpoint, ModeRandomInit, ModeRawPixels)
	case ix.Inputs < 0 || ix.Samples < 0 || ix.DeadLetters < 0:
		return bad("negative counts")
	case ix.Inputs != ix.Samples+ix.DeadLetters:
		return bad("%d inputs but %d samples + %d dead letters", ix.Inputs, ix.Samples, ix.DeadLetters)
	}
	var sum int64
	for i, f := range ix.Files {
		if f.Name == "" || f.Samples < 1 || f.Bytes < 1 {
			return bad("file %d: %+v: want a name, samples ≥ 1 and bytes ≥ 1", i, f)
		}
		if i > 0 && ix.Files[i-1].Name >= f.Name {
			return bad("files not sorted by name, or listed twice: %q before %q", ix.Files[i-1].Name, f.Name)
		}
		sum += int64(f.Samples)
	}
	if sum != ix.Samples {
		return bad("files hold %d samples, samples says %d", sum, ix.Samples)
	}
	return nil
}

// WriteIndex validates ix and writes it atomically as out/features.json.
func WriteIndex(ctx context.Context, out string, ix *Index) error {
	if err := ix.Validate(); err != nil {
		return err
	}
	return jsonfile.Write(ctx, storage.Join(out, IndexFileName), ix)
}

// ReadIndex reads and validates out/features.json.
func ReadIndex(ctx context.Context, out string) (*Index, error) {
	uri := storage.Join(out, IndexFileName)
	b, err := storage.ReadFile(ctx, uri)
	if err != nil {
		return nil, err
	}
	ix, err := ParseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	return ix, nil
}

// ParseIndex decodes and validates an index; unknown fields are an error,
// so a misspelt or foreign file is not taken for an index.
func ParseIndex(b []byte) (*Index, error) {
	var ix Index
	if err := jsonfile.Decode(bytes.TrimSpace(b), &ix); err != nil {
		return nil, fmt.Errorf("%w: index: %v", ErrFormat, err)
	}
	if err := ix.Validate(); err != nil {
		return nil, err
	}
	return &ix, nil
}

// ReadAll reads the index under out and every part it lists, and returns
// all samples as one Part sorted by key (a deterministic order whatever the
// number of parts), with the index. Parts are checked against the index
// (size, CRC32C, sample count, dimension), and a key found in two parts is
// an error.
func ReadAll(ctx context.Context, out string) (*Part, *Index, error) {
	ix, err := ReadIndex(ctx, out)
	if err != nil {
		return nil, nil, err
	}
	all := &Part{Dim: ix.Dim, X: make([]float32, 0, int(ix.Samples)*ix.Dim),
		Labels: make([]int64, 0, ix.Samples), Keys: make([]string, 0, ix.Samples)}
	for _, fi := range ix.Files {
		p, err := ReadPart(ctx, out, fi)
		if err != nil {
			return nil, nil, err
		}
		if p.Dim != ix.Dim {
			return nil, nil, fmt.Errorf("%s: %w: dimension %d, the index says %d", fi.Name, ErrFormat, p.Dim, ix.Dim)
		}
		all.X = append(all.X, p.X...)
		all.Labels = append(all.Labels, p.Labels...)
		all.Keys = append(all.Keys, p.Keys...)
	}
	order := make([]int, len(all.Keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(all.Keys[a], all.Keys[b]) })
	sorted := &Part{Dim: all.Dim, X: make([]float32, len(all.X)), Labels: make([]int64, len(order)), Keys: make([]string, len(order))}
	for i, j := range order {
		if i > 0 && all.Keys[j] == sorted.Keys[i-1] {
			return nil, nil, fmt.Errorf("%s: %w: key %q appears in two parts", out, ErrFormat, all.Keys[j])
		}
		sorted.Keys[i], sorted.Labels[i] = all.Keys[j], all.Labels[j]
		copy(sorted.X[i*all.Dim:(i+1)*all.Dim], all.X[j*all.Dim:(j+1)*all.Dim])
	}
	return sorted, ix, nil
}
