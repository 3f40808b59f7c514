package transforms

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/transforms/source"
)

func init() {
	register.DoFn4x1[context.Context, int, func(*string) bool, func(*string) bool, error](&WriteManifestFn{})
}

// ManifestParams is what the manifest says about the run besides the shards
// and dead letters the pipeline produced.
type ManifestParams struct {
	ConfigHash string
	ConfigJSON string
	Seed       uint64
	Epochs     int
	Format     string
	Root       string
	Classes    []string
	Items      []source.Item
	Rejected   []source.Rejection
	// Emit and ImageSize say what the shards hold (manifest.Manifest's).
	Emit      string
	ImageSize int
}

// BuildManifest accounts for every input of every epoch: each listed item
// is a sample in some shard or a dead letter, and each input the listing
// refused is a dead letter of every epoch (an annotation the listing
// refused is one dead letter, outside the epoch counts: it is not an
// input). It returns the manifest and the complete dead-letter list, or an
// error when the counts do not add up (an input was lost: a bug, never
// silently written).
func BuildManifest(p ManifestParams, infos []shard.Info, dead []deadletter.Record) (*manifest.Manifest, []deadletter.Record, error) {
	m := &manifest.Manifest{
		SchemaVersion: manifest.SchemaVersion,
		ConfigHash:    p.ConfigHash,
		Config:        json.RawMessage(p.ConfigJSON),
		Seed:          int64(p.Seed),
		Epochs:        p.Epochs,
		Emit:          p.Emit,
		ImageSize:     p.ImageSize,
		Source:        manifest.Source{Format: p.Format, Root: p.Root, Items: make([]manifest.Item, 0, len(p.Items))},
		ClassNames:    p.Classes,
		Shards:        infos,
	}
	for _, it := range p.Items {
		mi := manifest.Item{URI: it.URI, Key: SampleKey(it.Key), Size: it.Size, Generation: it.Generation, Label: it.Label}
		if it.Index >= 0 {
			// IDX records share one file: the key tells them apart.
			mi.URI = fmt.Sprintf("%s#%d", it.URI, it.Index)
		}
		if it.MTime != 0 {
			mi.ModTime = time.Unix(0, it.MTime).UTC()
		}
		m.Source.Items = append(m.Source.Items, mi)
	}
	all := append([]deadletter.Record(nil), dead...)
	itemRejections := 0
	for _, r := range p.Rejected {
		if !r.IsItem {
			m.AnnotationRejections++
			all = append(all, deadletter.Record{URI: r.URI, Key: r.Key, Stage: r.Stage, Error: r.Error})
			continue
		}
		itemRejections++
		for e := 0; e < p.Epochs; e++ {
			all = append(all, deadletter.Record{URI: r.URI, Key: r.Key, Stage: r.Stage, Error: r.Error, Epoch: deadletter.Epoch(e)})
		}
	}
	counts := make([]manifest.EpochCount, p.Epochs)
	for e := range counts {
		counts[e] = manifest.EpochCount{Epoch: e, Inputs: int64(len(p.Items) + itemRejections)}
	}
	for _, s := range infos {
		if s.Epoch < 0 || s.Epoch >= p.Epochs {
			return nil, nil, fmt.Errorf("manifest: shard %s has epoch %d outside [0, %d)", s.URI, s.Epoch, p.Epochs)
		}
		counts[s.Epoch].Samples += int64(s.Samples)
	}
	for _, d := range all {
		if d.Epoch == nil {
			continue
		}
		if *d.Epoch < 0 || *d.Epoch >= p.Epochs {
			return nil, nil, fmt.Errorf("manifest: dead letter %s has epoch %d outside [0, %d)", d.URI, *d.Epoch, p.Epochs)
		}
		counts[*d.Epoch].Dead++
	}
	for _, c := range counts {
		if c.Inputs != c.Samples+c.Dead {
			return nil, nil, fmt.Errorf("manifest: epoch %d: %d inputs but %d samples + %d dead letters: inputs were lost",
				c.Epoch, c.Inputs, c.Samples, c.Dead)
		}
	}
	m.EpochCounts = counts
	return m, all, nil
}

// WriteManifestFn receives every shard info and dead letter of the run in
// one group and writes manifest.json and dead-letter.jsonl. The listing is
// read back from ListingURI rather than carried in the DoFn, since a
// listing of a million objects does not belong in a pipeline graph.
type WriteManifestFn struct {
	Out        string
	ListingURI string
	// Params describe the run; Params.Items is filled from ListingURI.
	Params ManifestParams
}

// ProcessElement writes the run's manifest and dead-letter file.
func (f *WriteManifestFn) ProcessElement(ctx context.Context, _ int, infoLines, deadLines func(*string) bool) error {
	items, err := jsonfile.ReadLines[source.Item](ctx, f.ListingURI)
	if err != nil {
		return fmt.Errorf("read listing: %w", err)
	}
	var (
		infos []shard.Info
		dead  []deadletter.Record
		line  string
	)
	for infoLines(&line) {
		if line == "" { // the sentinel that guarantees this group exists
			continue
		}
		var in shard.Info
		if err := json.Unmarshal([]byte(line), &in); err != nil {
			return fmt.Errorf("shard info %q: %w", clip(line), err)
		}
		infos = append(infos, in)
	}
	for deadLines(&line) {
		var d deadletter.Record
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			return fmt.Errorf("dead letter %q: %w", clip(line), err)
		}
		dead = append(dead, d)
	}
	p := f.Params
	p.Items = items
	m, all, err := BuildManifest(p, infos, dead)
	if err != nil {
		return err
	}
	// The listing's refusals never passed through a worker: count them here
	// so the Beam counters cover every dead letter.
	for _, r := range p.Rejected {
		n := int64(1)
		if r.IsItem {
			n = int64(p.Epochs)
		}
		beam.NewCounter(MetricsNamespace, "dead_letters").Inc(ctx, n)
		beam.NewCounter(MetricsNamespace, "dead_letters_"+r.Stage).Inc(ctx, n)
	}
	if err := deadletter.Write(ctx, storage.Join(f.Out, deadletter.FileName), all); err != nil {
		return err
	}
	// The manifest goes last: its presence says the run is complete.
	return manifest.Write(ctx, storage.Join(f.Out, manifest.FileName), m)
}

// WriteManifest gathers the shard infos and dead letters of MultiCropShards
// on one key and writes the manifest and dead-letter file with fn.
func WriteManifest(s beam.Scope, infos, dead beam.PCollection, fn *WriteManifestFn) {
	s = s.Scope("WriteManifest")
	// A sentinel info makes the single group exist even when no shard was
	// written and nothing was dead-lettered by the workers.
	sentinel := beam.Create(s, "")
	infos = beam.Flatten(s, infos, sentinel)
	beam.ParDo0(s, fn, beam.CoGroupByKey(s, beam.AddFixedKey(s, infos), beam.AddFixedKey(s, dead)))
}
