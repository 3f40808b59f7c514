package transforms

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/transforms/source"
)

func init() {
	register.DoFn5x1[context.Context, string, func(*string) bool, func(string), func(string), error](&ExtractFeaturesFn{})
	register.DoFn4x1[context.Context, int, func(*string) bool, func(*string) bool, error](&WriteFeatureIndexFn{})
	beam.RegisterType(reflect.TypeOf((*FeatureBuilder)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*EvalView)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*FeatureIndexParams)(nil)).Elem())
}

// ExtractorLoader builds a FeatureExtractor from a spec string (what the
// spec means is up to the loader: a checkpoint URI, JSON, ...). It runs in
// the worker, once per DoFn instance.
type ExtractorLoader func(ctx context.Context, spec string) (FeatureExtractor, error)

var extractors struct {
	sync.Mutex
	m map[string]ExtractorLoader
}

// RegisterExtractor makes a loader available to ExtractFeaturesFn under
// name. Call it from an init function of a package linked into the worker
// binary (pipelines/evaluate registers trainer/features' models), so the
// DoFn, which carries only the name and the spec, can load a model on any
// runner. Registering a name twice is a programming error and panics.
func RegisterExtractor(name string, load ExtractorLoader) {
	extractors.Lock()
	defer extractors.Unlock()
	if extractors.m == nil {
		extractors.m = map[string]ExtractorLoader{}
	}
	if _, dup := extractors.m[name]; dup {
		panic(fmt.Sprintf("transforms: feature extractor %q registered twice", name))
	}
	extractors.m[name] = load
}

func lookupExtractor(name string) (ExtractorLoader, bool) {
	extractors.Lock()
	defer extractors.Unlock()
	l, ok := extractors.m[name]
	return l, ok
}

var (
	featuresCounter = beam.NewCounter(MetricsNamespace, "features_written")
	partsCounter    = beam.NewCounter(MetricsNamespace, "feature_parts_written")
)

// ExtractFeaturesFn writes one features part per group with its Builder.
// The model is loaded once per DoFn instance, in Setup, by the registered
// loader Extractor from Spec; the decode pool lives inside Build, since
// Prism runs a stage's elements one at a time. It emits the part's
// sinks/featurefile FileInfo and the dead letters of its failed items as JSON
// strings; emitters and metrics are touched only from the ProcessElement
// goroutine.
type ExtractFeaturesFn struct {
	// Builder is the configuration, serialised to the workers.
	Builder FeatureBuilder
	// Parts is the number of groups (for the part names).
	Parts int
	// Extractor names a RegisterExtractor loader and Spec is its argument.
	Extractor string
	Spec      string

	x FeatureExtractor
}

// Setup loads the model.
func (f *ExtractFeaturesFn) Setup(ctx context.Context) error {
	load, ok := lookupExtractor(f.Extractor)
	if !ok {
		return fmt.Errorf("feature extractor %q is not registered in this binary (have: %s); import the package that registers it",
			f.Extractor, describeExtractors())
	}
	x, err := load(ctx, f.Spec)
	if err != nil {
		return fmt.Errorf("load feature extractor %s: %w", f.Extractor, err)
	}
	f.x = x
	return nil
}

// Teardown releases the model's buffers when it has a Close method.
func (f *ExtractFeaturesFn) Teardown() { f.release() }

func (f *ExtractFeaturesFn) release() {
	if c, ok := f.x.(interface{ Close() }); ok {
		c.Close()
	}
}

// ProcessElement extracts and writes the part named by key.
func (f *ExtractFeaturesFn) ProcessElement(ctx context.Context, key string, lines func(*string) bool, emitInfo, emitDead func(string)) error {
	_, index, err := ParseShardKey(key)
	if err != nil {
		return err
	}
	job := FeatureJob{Index: index, Parts: f.Parts}
	var line string
	for lines(&line) {
		var it source.Item
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			return fmt.Errorf("features part %s: listing line %q: %w", key, clip(line), err)
		}
		job.Items = append(job.Items, it)
	}
	info, dead, err := f.Builder.Build(ctx, job, f.x)
	// Prism keeps every DoFn instance it made (six for a 60k-image
	// extraction here) until the process ends without calling Teardown,
	// so a part's compiled graphs are released as soon as it is written;
	// rebuilding them costs milliseconds per ~1,000-image part.
	f.release()
	if err != nil {
		return err
	}
	if info != nil {
		b, _ := json.Marshal(info)
		emitInfo(string(b))
		featuresCounter.Inc(ctx, int64(info.Samples))
		partsCounter.Inc(ctx, 1)
	}
	for _, d := range dead {
		b, _ := json.Marshal(d)
		emitDead(string(b))
		deadCounter.Inc(ctx, 1)
		beam.NewCounter(MetricsNamespace, "dead_letters_"+d.Stage).Inc(ctx, 1)
	}
	return nil
}

// ExtractFeatures is the heart of the evaluation pipeline's extraction:
// listed items (JSON source.Item lines) → part keys (assign, with one
// epoch) → GroupByKey → one ExtractFeaturesFn call per part. Only the
// small listing records cross the shuffle. It returns the written parts'
// FileInfos and the dead letters, both as JSON strings.
func ExtractFeatures(s beam.Scope, items beam.PCollection, assign *AssignShardsFn, extract *ExtractFeaturesFn) (infos, dead beam.PCollection) {
	s = s.Scope("ExtractFeatures")
	keyed := beam.ParDo(s, assign, items)
	groups := beam.GroupByKey(s, keyed)
	return beam.ParDo2(s, extract, groups)
}

// FeatureIndexParams is what the index says about the run besides the parts
// and dead letters the pipeline produced.
type FeatureIndexParams struct {
	// Index is the template: Dim, Model, Transform, Source, ConfigHash and
	// Classes are copied; the counts and files are filled in.
	Index featurefile.Index
	// Inputs is the number of inputs the listing accounts for (items plus
	// refused items).
	Inputs int64
	// Rejected are the listing's refusals, dead letters of their own.
	Rejected []source.Rejection
}

// BuildFeatureIndex accounts for every input: each is a row of some part or
// a dead letter (a refused annotation of a listed image is a dead letter
// outside the counts: it is not an input). It returns the index and the
// complete dead-letter list, or an error when the counts do not add up (an
// input was lost: a bug, never silently written).
func BuildFeatureIndex(p FeatureIndexParams, infos []featurefile.FileInfo, dead []deadletter.Record) (*featurefile.Index, []deadletter.Record, error) {
	ix := p.Index
	ix.SchemaVersion = featurefile.SchemaVersion
	ix.Files = slices.Clone(infos)
	sort.Slice(ix.Files, func(i, j int) bool { return ix.Files[i].Name < ix.Files[j].Name })
	ix.Samples, ix.DeadLetters, ix.Inputs = 0, int64(len(dead)), p.Inputs
	for _, f := range ix.Files {
		ix.Samples += int64(f.Samples)
	}
	all := slices.Clone(dead)
	for _, r := range p.Rejected {
		all = append(all, deadletter.Record{URI: r.URI, Key: r.Key, Stage: r.Stage, Error: r.Error})
		if r.IsItem {
			ix.DeadLetters++
		}
	}
	if ix.Inputs != ix.Samples+ix.DeadLetters {
		return nil, nil, fmt.Errorf("features index: %d inputs but %d feature rows + %d dead letters: inputs were lost",
			ix.Inputs, ix.Samples, ix.DeadLetters)
	}
	if err := ix.Validate(); err != nil {
		return nil, nil, err
	}
	return &ix, all, nil
}

// WriteFeatureIndexFn receives every part's FileInfo and every dead letter
// of the run in one group and writes dead-letter.jsonl, then features.json
// (last: its presence says the run is complete).
type WriteFeatureIndexFn struct {
	Out    string
	Params FeatureIndexParams
}

// ProcessElement writes the run's dead letters and index.
func (f *WriteFeatureIndexFn) ProcessElement(ctx context.Context, _ int, infoLines, deadLines func(*string) bool) error {
	var (
		infos []featurefile.FileInfo
		dead  []deadletter.Record
		line  string
	)
	for infoLines(&line) {
		if line == "" { // the sentinel that guarantees this group exists
			continue
		}
		var fi featurefile.FileInfo
		if err := json.Unmarshal([]byte(line), &fi); err != nil {
			return fmt.Errorf("features part info %q: %w", clip(line), err)
		}
		infos = append(infos, fi)
	}
	for deadLines(&line) {
		var d deadletter.Record
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			return fmt.Errorf("dead letter %q: %w", clip(line), err)
		}
		dead = append(dead, d)
	}
	ix, all, err := BuildFeatureIndex(f.Params, infos, dead)
	if err != nil {
		return err
	}
	// The listing's refusals never passed through a worker: count them here
	// so the Beam counters cover every dead letter.
	for _, r := range f.Params.Rejected {
		beam.NewCounter(MetricsNamespace, "dead_letters").Inc(ctx, 1)
		beam.NewCounter(MetricsNamespace, "dead_letters_"+r.Stage).Inc(ctx, 1)
	}
	if err := deadletter.Write(ctx, storage.Join(f.Out, deadletter.FileName), all); err != nil {
		return err
	}
	return featurefile.WriteIndex(ctx, f.Out, ix)
}

// WriteFeatureIndex gathers the outputs of ExtractFeatures on one key and
// writes the dead letters and the index with fn.
func WriteFeatureIndex(s beam.Scope, infos, dead beam.PCollection, fn *WriteFeatureIndexFn) {
	s = s.Scope("WriteFeatureIndex")
	// A sentinel makes the single group exist even when no part was
	// written and nothing was dead-lettered by the workers.
	infos = beam.Flatten(s, infos, beam.Create(s, ""))
	beam.ParDo0(s, fn, beam.CoGroupByKey(s, beam.AddFixedKey(s, infos), beam.AddFixedKey(s, dead)))
}

// describeExtractors lists the registered loader names, for errors.
func describeExtractors() string {
	extractors.Lock()
	defer extractors.Unlock()
	names := make([]string, 0, len(extractors.m))
	for n := range extractors.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
