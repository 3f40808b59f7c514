// Package embed is `sslight embed`: the evaluation's Beam feature
// extraction (pipelines/evaluate.Extract) run over images that need no
// labels — a plain folder by default, local or gs:// — with a
// checkpoint's student or teacher, and the files a Python user reads
// without sslight:
//
//	embeddings.npy       float32 [N, D], row i the embedding of line i of keys.txt
//	keys.txt             the N image keys (paths relative to the source), one per line
//	index.jsonl          per row: {"row", "key", "uri"} (+ "record" for IDX, "label"/"class" when labelled)
//	neighbours.jsonl     with Nearest K: per row {"key", "neighbours": [{"key", "similarity"}, …]}
//	features/, features.json, dead-letter.jsonl, listing.jsonl
//	                     what Extract writes: the safetensors parts, their index, one
//	                     dead letter per image that gave no embedding
//	summary.json         counts, files and timings (Summary)
//
// Rows follow the features index's key order (sorted keys). The
// neighbours are exact: cosine similarity of every pair by blocked matrix
// products (trainer/eval.Nearest), n²·D multiply-adds.
//
// Embedding takes sslight checkpoints only: there is no ONNX runtime in
// Go here, so an exported model cannot be run by this package.
package embed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/transforms/source"
)

// Files written under Options.Out besides Extract's.
const (
	EmbeddingsFile = "embeddings.npy"
	KeysFile       = "keys.txt"
	IndexFile      = "index.jsonl"
	NeighboursFile = "neighbours.jsonl"
)

// Options are one embedding run; the fields map onto `sslight embed`'s
// flags.
type Options struct {
	// Checkpoint is a checkpoint folder or a pretrain --out (its newest
	// checkpoint). Required. (--checkpoint)
	Checkpoint string
	// Weights picks its network: checkpoint.Student ("" too) or
	// checkpoint.Teacher. (--weights)
	Weights checkpoint.Weights
	// Device is where the model runs: cpu, cuda or auto
	// (evaluate.PlaceModels). (--device)
	Device string
	// Source is the image root (local folder or gs://bucket/prefix).
	// Required. (--source)
	Source string
	// Format is the source layout: folder ("" too: every file under
	// Source, unlabelled), imagenet, coco or idx (their labels are kept in
	// index.jsonl). (--format)
	Format string
	// Split and Limit go to the listing (coco, idx splits; the first Limit
	// keys). (--split, --limit)
	Split string
	Limit int
	// Out is the output folder (local or gs://). Required. (--out)
	Out string
	// Nearest, when positive, writes neighbours.jsonl with each image's
	// Nearest nearest others (capped at N−1). (--nearest)
	Nearest int
	// GroupSize, Workers and BatchSize tune the extraction as in
	// evaluate.Options (0: their defaults).
	GroupSize, Workers, BatchSize int
	// Progress, when set, receives progress lines.
	Progress io.Writer
}

// Summary is what a run reports, also written as summary.json: the
// extraction's summary with the files embed adds.
type Summary struct {
	evaluate.Summary
	// Embeddings, Keys, RowIndex and Neighbours are the URIs of
	// embeddings.npy, keys.txt, index.jsonl and neighbours.jsonl ("" without
	// Nearest); DeadLetterFile lists the images without an embedding.
	Embeddings     string `json:"embeddings"`
	Keys           string `json:"keys_txt"`
	RowIndex       string `json:"index_jsonl"`
	Neighbours     string `json:"neighbours,omitempty"`
	DeadLetterFile string `json:"dead_letter_file"`
	// NearestK is the number of neighbours listed per image (Nearest,
	// capped at N−1) and NearestSeconds the search's wall time.
	NearestK       int     `json:"nearest_k,omitempty"`
	NearestSeconds float64 `json:"nearest_seconds,omitempty"`
	// TotalSeconds is the wall time of the whole run.
	TotalSeconds float64 `json:"total_seconds"`
}

// ErrOptions is wrapped by every error about the options themselves.
var ErrOptions = errors.New("embed: bad options")

// Row is one line of index.jsonl: the row of embeddings.npy, the image's
// key and URI, its record within an IDX file, and its label where the
// layout gives one.
type Row struct {
	Row    int    `json:"row"`
	Key    string `json:"key"`
	URI    string `json:"uri"`
	Record *int   `json:"record,omitempty"`
	Label  *int   `json:"label,omitempty"`
	Class  string `json:"class,omitempty"`
}

// Neighbour is one entry of a neighbours.jsonl line.
type Neighbour struct {
	Key        string  `json:"key"`
	Similarity float32 `json:"similarity"`
}

// Neighbours is one line of neighbours.jsonl: an image's key and its
// nearest other images, most similar first.
type Neighbours struct {
	Key        string      `json:"key"`
	Neighbours []Neighbour `json:"neighbours"`
}

// check refuses bad options before anything is read.
func (o Options) check() (Options, error) {
	switch {
	case o.Checkpoint == "":
		return o, fmt.Errorf("%w: no checkpoint (--checkpoint: a checkpoint folder or a pretrain --out)", ErrOptions)
	case strings.HasSuffix(strings.ToLower(o.Checkpoint), ".onnx"):
		return o, fmt.Errorf("%w: --checkpoint %s is an ONNX file: embed runs sslight checkpoints (there is no ONNX runtime in Go here); pass the checkpoint it was exported from",
			ErrOptions, o.Checkpoint)
	case o.Source == "":
		return o, fmt.Errorf("%w: no source (--source: a local folder or gs://bucket/prefix)", ErrOptions)
	case o.Out == "":
		return o, fmt.Errorf("%w: no output folder (--out)", ErrOptions)
	case o.Nearest < 0:
		return o, fmt.Errorf("%w: --nearest %d: want a positive number of neighbours, or 0 for none", ErrOptions, o.Nearest)
	case o.Limit < 0:
		return o, fmt.Errorf("%w: --limit %d: want a positive number of images, or 0 for all", ErrOptions, o.Limit)
	}
	if o.Format == "" {
		o.Format = source.FormatFolder
	}
	switch o.Format {
	case source.FormatFolder, source.FormatImageNet, source.FormatCOCO, source.FormatIDX:
	default:
		return o, fmt.Errorf("%w: --format %q: want %s, %s, %s or %s", ErrOptions, o.Format,
			source.FormatFolder, source.FormatImageNet, source.FormatCOCO, source.FormatIDX)
	}
	w, err := checkpoint.ParseWeights(string(o.Weights))
	if err != nil {
		return o, fmt.Errorf("%w: --%v", ErrOptions, err)
	}
	o.Weights = w
	return o, nil
}

// Run embeds every image of the source and writes the files the package
// doc lists. The checkpoint is loaded (strictly, the teacher refused for
// SwAV) and tried before anything is listed. An image that cannot be read
// or decoded is a dead letter, never an error; a source none of whose
// images gives an embedding is one.
func Run(ctx context.Context, o Options) (*Summary, error) {
	start := time.Now()
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	ext, err := evaluate.Extract(ctx, evaluate.Options{Checkpoint: o.Checkpoint, Weights: o.Weights, Source: o.Source,
		Format: o.Format, Split: o.Split, Limit: o.Limit, Out: o.Out, GroupSize: o.GroupSize, Workers: o.Workers,
		BatchSize: o.BatchSize, Device: o.Device, Progress: o.Progress})
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	sum := &Summary{Summary: *ext, Embeddings: storage.Join(o.Out, EmbeddingsFile), Keys: storage.Join(o.Out, KeysFile),
		RowIndex: storage.Join(o.Out, IndexFile), DeadLetterFile: storage.Join(o.Out, deadletter.FileName)}
	if ext.Samples == 0 {
		return nil, fmt.Errorf("embed: none of the %d inputs under %s gave an embedding: every one is a dead letter (see %s)",
			ext.Inputs, ext.Source, sum.DeadLetterFile)
	}
	all, ix, err := featurefile.ReadAll(ctx, o.Out)
	if err != nil {
		return nil, fmt.Errorf("embed: read the features back: %w", err)
	}
	items, err := jsonfile.ReadLines[source.Item](ctx, storage.Join(o.Out, evaluate.ListingFileName))
	if err != nil {
		return nil, fmt.Errorf("embed: read the listing back: %w", err)
	}
	rows, err := indexRows(all.Keys, all.Labels, ix.Classes, items)
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	if err := writeEmbeddings(ctx, sum.Embeddings, all.Len(), all.Dim, all.X); err != nil {
		return nil, err
	}
	if err := jsonfile.WriteLines(ctx, sum.RowIndex, rows); err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	if err := writeKeys(ctx, sum.Keys, all.Keys); err != nil {
		return nil, err
	}
	if o.Nearest > 0 {
		t := time.Now()
		lines, err := NearestLines(all.X, all.Dim, all.Keys, o.Nearest)
		if err != nil {
			return nil, fmt.Errorf("embed: --nearest: %w", err)
		}
		sum.Neighbours, sum.NearestSeconds = storage.Join(o.Out, NeighboursFile), time.Since(t).Seconds()
		sum.NearestK = min(o.Nearest, all.Len()-1)
		if err := jsonfile.WriteLines(ctx, sum.Neighbours, lines); err != nil {
			return nil, fmt.Errorf("embed: %w", err)
		}
	}
	sum.TotalSeconds = time.Since(start).Seconds()
	if err := jsonfile.Write(ctx, storage.Join(o.Out, evaluate.SummaryFileName), sum); err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	return sum, nil
}

// indexRows are the lines of index.jsonl for the sorted keys, with each
// key's listed item (its URI and record) and label.
func indexRows(keys []string, labels []int64, classes []string, items []source.Item) ([]Row, error) {
	byKey := make(map[string]source.Item, len(items))
	for _, it := range items {
		byKey[it.Key] = it
	}
	rows := make([]Row, len(keys))
	for i, k := range keys {
		it, ok := byKey[k]
		if !ok {
			return nil, fmt.Errorf("features key %q is not in the listing", k) // the pipeline's output is inconsistent
		}
		rows[i] = Row{Row: i, Key: k, URI: it.URI}
		if it.Index >= 0 {
			rec := it.Index
			rows[i].Record = &rec
		}
		if l := int(labels[i]); l >= 0 {
			rows[i].Label = &l
			if l < len(classes) {
				rows[i].Class = classes[l]
			}
		}
	}
	return rows, nil
}

// writeEmbeddings streams the [n, dim] matrix as a float32 .npy file.
func writeEmbeddings(ctx context.Context, uri string, n, dim int, x []float32) error {
	w, err := storage.Create(ctx, uri)
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	defer w.Abort() // a no-op after Commit
	if err := npy.WriteFloat32(w, []int{n, dim}, x); err != nil {
		return fmt.Errorf("embed: write %s: %w", uri, err)
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("embed: write %s: %w", uri, err)
	}
	return nil
}

// writeKeys writes one key per line. A key holding a line break cannot be
// a line of keys.txt: index.jsonl (written before) still has it.
func writeKeys(ctx context.Context, uri string, keys []string) error {
	var b strings.Builder
	for _, k := range keys {
		if strings.ContainsAny(k, "\r\n") {
			return fmt.Errorf("embed: image key %q holds a line break, which keys.txt cannot: read the keys from %s instead", k, IndexFile)
		}
		b.WriteString(k)
		b.WriteByte('\n')
	}
	if err := storage.WriteFile(ctx, uri, []byte(b.String())); err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	return nil
}

// NearestLines finds each row's k nearest other rows of the [len(keys),
// dim] matrix x by cosine similarity (eval.Nearest: exact, ties to the
// lower row) and returns the neighbours.jsonl lines in row order, the
// similarities clamped to [−1, 1].
func NearestLines(x []float32, dim int, keys []string, k int) ([]Neighbours, error) {
	nb, err := eval.Nearest(x, dim, k)
	if err != nil {
		return nil, err
	}
	lines := make([]Neighbours, len(nb))
	for i, row := range nb {
		l := Neighbours{Key: keys[i], Neighbours: make([]Neighbour, len(row))}
		for j, n := range row {
			// float32 rounding can put a near-duplicate a hair above 1.
			l.Neighbours[j] = Neighbour{Key: keys[n.Index], Similarity: min(max(n.Similarity, -1), 1)}
		}
		lines[i] = l
	}
	return lines, nil
}
