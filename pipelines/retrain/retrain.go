// Package retrain closes sslight's loop: on a schedule it lists the source,
// diffs it against what the last run saw (URI, size, GCS generation or
// modification time), prepares only the new and changed objects as a new
// shards increment, continues pre-training from the newest checkpoint over
// old and new shards, re-evaluates, and appends to a history.
//
// Layout under the state URI:
//
//	state.json                 the committed state: increments, phases, history length
//	known-NNNN.jsonl           the source listing the state was committed with
//	shards/inc-NNNN/           one prepare run per increment (its own manifest)
//	pretrain/phase-NNNN/       one pre-training run per retrain run; plan.json says
//	                           what it trains on (phase-NNNN.2, … : see below)
//	history.jsonl, history.png metrics over runs
//
// Crash safety: state.json is replaced atomically as the last step of a
// run. A run that dies before it (a crash or kill at any write: the
// listing, the increment's shards and manifest, each pre-training
// checkpoint, the evaluation, history.jsonl, history.png, the known
// listing) recomputes the same diff on the next start, finds its increment
// already prepared (its manifest lists exactly the planned objects and
// every epoch) and its pre-training phase checkpointed (the trainer resumes
// it from its newest checkpoint, exactly), so only the unfinished steps
// are redone, and the rerun ends with the state an uninterrupted run
// leaves: the same state.json, known listing, shards, checkpoints and
// history (but for the history entry's time and seconds). What is not
// reproduced is what reports the run that wrote it: prepare's and the
// trainer's summary.json (wall times) and metrics.jsonl's timings, and a
// summary.json a crash kept from being written stays absent. When objects
// land or change between the crash and the rerun, the rerun plans another
// increment than the crashed attempt prepared; it prepares it again, and
// its phase, finding the attempt's plan.json different, trains afresh in
// phase-NNNN.2 (.3, …), keeping the attempt's checkpoints but resuming
// none trained on other data.
//
// A phase is committed only with its final checkpoint checked: the folder
// the pre-training returned is under the phase's output, holds meta.json
// (every epoch trained), checkpoint.safetensors and a backbone.safetensors
// that loads strictly. An empty or missing checkpoint is an error, never a
// committed phase, so the next run never starts from a fresh
// initialisation by mistake.
//
// Temporaries: local writes go through a temporary file that a killed
// process leaves behind (".tmp-*", see storage.Writer); every run removes
// those under the state older than storage.StaleTemporaryAge at start. On
// gs:// writes create no temporary object, so there is nothing to remove.
//
// Pre-training and evaluation are given as functions (the command wires
// the trainer in), so this package keeps to the pipelines' import rules:
// of the trainer it reads only checkpoints (trainer/checkpoint, as
// evaluation does).
package retrain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/pipelines/prepare"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/transforms"
	"github.com/sslight-go/sslight/transforms/source"
)

// StateFile is the committed state under the state URI.
const StateFile = "state.json"

// State is what one committed run leaves for the next.
type State struct {
	Version    int    `json:"version"`
	ConfigHash string `json:"config_hash"`
	Source     string `json:"source"`
	Format     string `json:"format"`
	// Known is the listing file of the last committed run.
	Known      string      `json:"known"`
	Increments []Increment `json:"increments"`
	// Phases are the pre-training runs, oldest first; the last one's
	// Checkpoint starts the next phase.
	Phases []Phase `json:"phases"`
	Runs   int     `json:"runs"`
}

// Increment is one prepared shards root.
type Increment struct {
	Name   string `json:"name"`
	Shards string `json:"shards"`
	Items  int    `json:"items"`
	// Superseded lists sample keys of this increment replaced by a later
	// one (changed objects) or gone from the source (removed objects):
	// training skips them.
	Superseded []string `json:"superseded,omitempty"`
}

// Phase is one pre-training run.
type Phase struct {
	Name       string `json:"name"`
	Out        string `json:"out"`
	Checkpoint string `json:"checkpoint"`
}

// Stamp is what identifies one version of an object.
type Stamp struct {
	URI        string `json:"uri"`
	Key        string `json:"key"`
	Size       int64  `json:"size"`
	Generation int64  `json:"generation,omitempty"`
	MTime      int64  `json:"mtime,omitempty"`
}

func stampOf(it source.Item) Stamp {
	return Stamp{URI: it.URI, Key: it.Key, Size: it.Size, Generation: it.Generation, MTime: it.MTime}
}

// Diff compares a listing with the known stamps (keyed by source key).
type Diff struct {
	New, Changed []source.Item
	Removed      []string // source keys
	Unchanged    int
}

// Empty reports whether nothing needs doing.
func (d Diff) Empty() bool { return len(d.New)+len(d.Changed)+len(d.Removed) == 0 }

// Compare diffs items against known: an item is changed when its URI,
// size, generation or modification time differs. (An IDX file's records
// share the file's stamp, so rewriting the file marks all its records.)
func Compare(items []source.Item, known map[string]Stamp) Diff {
	var d Diff
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		seen[it.Key] = true
		k, ok := known[it.Key]
		switch {
		case !ok:
			d.New = append(d.New, it)
		case k != stampOf(it):
			d.Changed = append(d.Changed, it)
		default:
			d.Unchanged++
		}
	}
	for key := range known {
		if !seen[key] {
			d.Removed = append(d.Removed, key)
		}
	}
	sort.Strings(d.Removed)
	return d
}

// PretrainFunc continues pre-training over shards (excluding keys per
// root) from initFrom ("" for a fresh start) into out, resuming from out's
// newest checkpoint if it has some (a crashed attempt's; if that one is
// already final, it trains nothing), and returns the final checkpoint
// folder, which Once checks before it commits the phase.
type PretrainFunc func(ctx context.Context, shards []string, exclude map[string]map[string]bool, initFrom, out string) (string, error)

// EvaluateFunc scores a checkpoint, returning metrics by name
// (report.Columns keys).
type EvaluateFunc func(ctx context.Context, checkpoint string) (map[string]float64, error)

// Options configure one retrain run.
type Options struct {
	Config  *configs.Config
	Source  string
	State   string
	Split   string
	Epochs  int // prepared epochs per increment
	Workers int
	// Pretrain and Evaluate do the training and scoring (Evaluate may be
	// nil: no evaluation).
	Pretrain PretrainFunc
	Evaluate EvaluateFunc
	Log      io.Writer
}

// HistoryEntry is one line of history.jsonl.
type HistoryEntry struct {
	Run        int                `json:"run"`
	Time       string             `json:"time"`
	New        int                `json:"new"`
	Changed    int                `json:"changed"`
	Removed    int                `json:"removed"`
	Objects    int                `json:"objects"`
	Increment  string             `json:"increment"`
	Checkpoint string             `json:"checkpoint"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Seconds    float64            `json:"seconds"`
}

// Result says what a run did.
type Result struct {
	Ran   bool `json:"ran"` // false when there was nothing new
	Diff  Diff `json:"-"`
	Entry *HistoryEntry
	// TemporariesRemoved are the stale temporaries of killed runs removed
	// under the state at start.
	TemporariesRemoved []string `json:"temporaries_removed,omitempty"`
}

// ErrConfigChanged is returned when the state was built with another
// config than the run's.
var ErrConfigChanged = errors.New("retrain: the state was built with another config")

func (o *Options) logf(format string, a ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", a...)
	}
}

// Load reads the committed state, or returns an empty one when there is
// none yet.
func Load(ctx context.Context, stateURI string) (*State, error) {
	uri := storage.Join(stateURI, StateFile)
	ok, err := storage.Exists(ctx, uri)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &State{Version: 1}, nil
	}
	var st State
	if err := jsonfile.Read(ctx, uri, &st); err != nil {
		return nil, fmt.Errorf("retrain state %s: %w", uri, err)
	}
	return &st, nil
}

func (st *State) known(ctx context.Context) (map[string]Stamp, error) {
	m := map[string]Stamp{}
	if st.Known == "" {
		return m, nil
	}
	stamps, err := jsonfile.ReadLines[Stamp](ctx, st.Known)
	if err != nil {
		return nil, fmt.Errorf("retrain: known listing: %w", err)
	}
	for _, s := range stamps {
		m[s.Key] = s
	}
	return m, nil
}

// Once runs one retrain step.
func Once(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	if o.Config == nil || o.Source == "" || o.State == "" || o.Pretrain == nil {
		return nil, errors.New("retrain: Config, Source, State and Pretrain are required")
	}
	if o.Epochs < 1 {
		o.Epochs = 1
	}
	// A run killed earlier (kill -9, an evicted pod) may have left local
	// temporaries anywhere under the state; the age bound spares those of
	// a live writer.
	cleaned, err := storage.CleanTemporaries(ctx, o.State, storage.StaleTemporaryAge)
	if err != nil {
		return nil, fmt.Errorf("retrain: %w", err)
	}
	if len(cleaned) > 0 {
		o.logf("retrain: removed %d stale temporaries of killed runs under %s", len(cleaned), o.State)
	}
	st, err := Load(ctx, o.State)
	if err != nil {
		return nil, err
	}
	hash := o.Config.Hash()
	if st.ConfigHash != "" && st.ConfigHash != hash {
		return nil, fmt.Errorf("%w (%.12s…, this run %.12s…): use a new --state for a new config", ErrConfigChanged, st.ConfigHash, hash)
	}
	known, err := st.known(ctx)
	if err != nil {
		return nil, err
	}
	listing, err := source.List(ctx, o.Config.Data.Format, o.Source, source.Options{Split: o.Split})
	if err != nil {
		return nil, err
	}
	d := Compare(listing.Items, known)
	if d.Empty() {
		o.logf("retrain: no new, changed or removed objects in %s since run %d (%d objects known): nothing to do", o.Source, st.Runs, len(known))
		return &Result{Diff: d, TemporariesRemoved: cleaned}, nil
	}
	o.logf("retrain: run %d: %d new, %d changed, %d removed, %d unchanged objects", st.Runs+1, len(d.New), len(d.Changed), len(d.Removed), d.Unchanged)
	// The checkpoint the phase continues from, checked before the long work.
	initFrom, err := st.initFrom(ctx, o)
	if err != nil {
		return nil, err
	}

	// 1. Prepare the new and changed objects as the next increment.
	inc := Increment{Name: fmt.Sprintf("inc-%04d", len(st.Increments)+1)}
	inc.Shards = storage.Join(o.State, "shards", inc.Name)
	fresh := append(append([]source.Item{}, d.New...), d.Changed...)
	inc.Items = len(fresh)
	if len(fresh) > 0 {
		if err := prepareIncrement(ctx, o, listing, fresh, inc.Shards); err != nil {
			return nil, err
		}
	}
	// 2. Mark superseded samples of older increments.
	gone := map[string]bool{}
	for _, it := range d.Changed {
		gone[itemSampleKey(it.Key)] = true
	}
	for _, key := range d.Removed {
		gone[itemSampleKey(key)] = true
	}
	increments := append([]Increment{}, st.Increments...)
	for i := range increments {
		m, err := manifest.Read(ctx, storage.Join(increments[i].Shards, manifest.FileName))
		if err != nil {
			return nil, fmt.Errorf("retrain: increment %s: %w", increments[i].Name, err)
		}
		sup := map[string]bool{}
		for _, k := range increments[i].Superseded {
			sup[k] = true
		}
		for _, it := range m.Source.Items {
			if gone[it.Key] {
				sup[it.Key] = true
			}
		}
		increments[i].Superseded = sortedKeys(sup)
	}
	if len(fresh) > 0 {
		increments = append(increments, inc)
	}
	// 3. Continue pre-training over all increments.
	var roots []string
	exclude := map[string]map[string]bool{}
	for _, in := range increments {
		roots = append(roots, in.Shards)
		if len(in.Superseded) > 0 {
			exclude[in.Shards] = map[string]bool{}
			for _, k := range in.Superseded {
				exclude[in.Shards][k] = true
			}
		}
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("retrain: every object of %s was removed: nothing left to train on", o.Source)
	}
	phase := Phase{Name: fmt.Sprintf("phase-%04d", len(st.Phases)+1)}
	p, err := planOf(ctx, increments, initFrom)
	if err != nil {
		return nil, err
	}
	if phase.Out, err = phaseOutput(ctx, o, storage.Join(o.State, "pretrain", phase.Name), p); err != nil {
		return nil, err
	}
	o.logf("retrain: pre-training %s over %d increment(s) from %s", phase.Name, len(roots), orNone(initFrom))
	if phase.Checkpoint, err = o.Pretrain(ctx, roots, exclude, initFrom, phase.Out); err != nil {
		return nil, fmt.Errorf("retrain: pre-training: %w", err)
	}
	if err := checkFinal(ctx, phase.Checkpoint, phase.Out); err != nil {
		return nil, fmt.Errorf("retrain: pre-training %s returned no usable final checkpoint, so nothing is committed: %w", phase.Name, err)
	}
	// 4. Evaluate.
	entry := &HistoryEntry{Run: st.Runs + 1, Time: time.Now().UTC().Format(time.RFC3339), New: len(d.New), Changed: len(d.Changed),
		Removed: len(d.Removed), Objects: len(listing.Items), Checkpoint: phase.Checkpoint}
	if len(fresh) > 0 {
		entry.Increment = inc.Name
	}
	if o.Evaluate != nil {
		if entry.Metrics, err = o.Evaluate(ctx, phase.Checkpoint); err != nil {
			return nil, fmt.Errorf("retrain: evaluation: %w", err)
		}
	}
	entry.Seconds = time.Since(start).Seconds()
	// 5. History, then the state (the commit point).
	if err := appendHistory(ctx, o.State, entry); err != nil {
		return nil, err
	}
	knownURI := storage.Join(o.State, fmt.Sprintf("known-%04d.jsonl", st.Runs+1))
	stamps := make([]Stamp, len(listing.Items))
	for i, it := range listing.Items {
		stamps[i] = stampOf(it)
	}
	if err := jsonfile.WriteLines(ctx, knownURI, stamps); err != nil {
		return nil, err
	}
	next := &State{Version: 1, ConfigHash: hash, Source: o.Source, Format: o.Config.Data.Format, Known: knownURI,
		Increments: increments, Phases: append(append([]Phase{}, st.Phases...), phase), Runs: st.Runs + 1}
	if err := jsonfile.Write(ctx, storage.Join(o.State, StateFile), next); err != nil {
		return nil, fmt.Errorf("retrain: commit state: %w", err)
	}
	o.logf("retrain: run %d committed (%s)", next.Runs, time.Since(start).Round(time.Second))
	return &Result{Ran: true, Diff: d, Entry: entry, TemporariesRemoved: cleaned}, nil
}

// initFrom is the final checkpoint of the last committed phase ("" before
// the first), checked to be a complete one. A phase committed without a
// checkpoint (as an earlier sslight could, after a crash between the final
// checkpoint and its commit) continues from the newest final checkpoint
// its output holds; if it holds none, the run stops rather than train from
// a fresh initialisation.
func (st *State) initFrom(ctx context.Context, o Options) (string, error) {
	n := len(st.Phases)
	if n == 0 {
		return "", nil
	}
	last := st.Phases[n-1]
	dir := last.Checkpoint
	if dir == "" {
		found, _, err := checkpoint.Latest(ctx, last.Out)
		if err != nil {
			return "", fmt.Errorf("retrain: %s names no checkpoint for %s, and its output %s: %w", StateFile, last.Name, last.Out, err)
		}
		if found == "" {
			return "", fmt.Errorf("retrain: %s names no checkpoint for %s and %s holds none: "+
				"its training is lost; set the phase's checkpoint in %s to the one to continue from",
				StateFile, last.Name, last.Out, storage.Join(o.State, StateFile))
		}
		o.logf("retrain: %s names no checkpoint for %s; continuing from its newest one, %s", StateFile, last.Name, found)
		dir = found
	}
	if err := checkFinal(ctx, dir, last.Out); err != nil {
		return "", fmt.Errorf("retrain: the checkpoint of %s to continue from: %w", last.Name, err)
	}
	return dir, nil
}

// checkFinal checks that dir is a complete final checkpoint of the
// training output out: the folder of its own step under out, with
// meta.json saying every epoch was trained, checkpoint.safetensors (what
// the next phase starts from) and a backbone.safetensors that loads
// strictly. Writes are atomic, so a file that exists is whole.
func checkFinal(ctx context.Context, dir, out string) error {
	if dir == "" {
		return errors.New("no checkpoint folder")
	}
	bb, err := checkpoint.LoadBackbone(ctx, dir, checkpoint.Student)
	if err != nil {
		return err
	}
	m := bb.Meta
	if want := checkpoint.Dir(out, m.Step); bb.Dir != want {
		return fmt.Errorf("checkpoint %s: not the step-%d checkpoint of %s (%s)", dir, m.Step, out, want)
	}
	if m.Epochs < 1 || m.Epoch < m.Epochs {
		return fmt.Errorf("checkpoint %s: trained %d of %d epochs, not a final checkpoint", dir, m.Epoch, m.Epochs)
	}
	state := storage.Join(dir, checkpoint.StateFile)
	if n, err := storage.Size(ctx, state); err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	} else if n == 0 {
		return fmt.Errorf("checkpoint %s: %s is empty", dir, checkpoint.StateFile)
	}
	return nil
}

// planFile is written into a phase's output before it trains: what the
// phase trains on.
const planFile = "plan.json"

// plan is what a pre-training phase trains on: the shards roots (with
// their manifests' CRC32C and the sample keys left out of each) and the
// checkpoint it starts from. A rerun after a crash finds the same plan in
// the phase's output and resumes its checkpoints; a rerun that plans
// otherwise (objects landed or changed since the crash, so the increment
// was prepared again) must not resume them.
type plan struct {
	Roots    []planRoot `json:"roots"`
	InitFrom string     `json:"init_from"`
}

// planRoot is one shards root of a plan.
type planRoot struct {
	Shards         string   `json:"shards"`
	ManifestCRC32C string   `json:"manifest_crc32c"`
	Excluded       []string `json:"excluded,omitempty"`
}

// planOf is the plan of a phase over increments from initFrom.
func planOf(ctx context.Context, increments []Increment, initFrom string) (*plan, error) {
	p := &plan{InitFrom: initFrom}
	for _, in := range increments {
		b, err := storage.ReadFile(ctx, storage.Join(in.Shards, manifest.FileName))
		if err != nil {
			return nil, fmt.Errorf("retrain: increment %s: %w", in.Name, err)
		}
		p.Roots = append(p.Roots, planRoot{Shards: in.Shards, ManifestCRC32C: storage.CRC32CBase64(storage.UpdateCRC32C(0, b)), Excluded: in.Superseded})
	}
	return p, nil
}

// phaseOutput returns the folder the phase trains into: base, or, when
// base holds an earlier attempt that trained on another plan, the first
// of base.2, base.3, … that holds this plan or nothing, so neither that
// attempt's checkpoints are lost nor resumed for data they were not
// trained on. It records the plan there.
func phaseOutput(ctx context.Context, o Options, base string, p *plan) (string, error) {
	want, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	for attempt := 1; ; attempt++ {
		out := base
		if attempt > 1 {
			out = fmt.Sprintf("%s.%d", base, attempt)
		}
		uri := storage.Join(out, planFile)
		var have plan
		err := jsonfile.Read(ctx, uri, &have)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := jsonfile.Write(ctx, uri, p); err != nil {
				return "", fmt.Errorf("retrain: %w", err)
			}
			return out, nil
		case err != nil:
			return "", fmt.Errorf("retrain: %w", err)
		}
		if got, _ := json.Marshal(&have); bytes.Equal(got, want) {
			return out, nil
		}
		o.logf("retrain: %s holds an earlier attempt that trained on other data; this attempt trains elsewhere", out)
	}
}

// prepareIncrement prepares fresh into dir, unless a complete earlier
// attempt already did (its manifest lists exactly these objects and
// accounts for every epoch).
func prepareIncrement(ctx context.Context, o Options, listing *source.Listing, fresh []source.Item, dir string) error {
	want := make([]string, len(fresh))
	for i, it := range fresh {
		want[i] = it.URI
	}
	sort.Strings(want)
	if m, err := manifest.Read(ctx, storage.Join(dir, manifest.FileName)); err == nil && m.ConfigHash == o.Config.Hash() &&
		m.Epochs == o.Epochs && len(m.EpochCounts) == o.Epochs {
		var have []string
		for _, it := range m.Source.Items {
			have = append(have, it.URI)
		}
		sort.Strings(have)
		if strings.Join(have, "\n") == strings.Join(want, "\n") {
			o.logf("retrain: %s already prepared by an earlier attempt", dir)
			return nil
		}
	}
	keep := map[string]bool{}
	for _, it := range fresh {
		keep[it.Key] = true
	}
	sub := &source.Listing{Format: listing.Format, Root: listing.Root, Classes: listing.Classes, Items: fresh}
	for _, r := range listing.Rejected {
		if keep[r.Key] {
			sub.Rejected = append(sub.Rejected, r)
		}
	}
	_, err := prepare.Run(ctx, prepare.Options{Config: o.Config, Source: o.Source, Out: dir, Epochs: o.Epochs,
		Workers: o.Workers, Overwrite: true, Listing: sub, Progress: o.Log})
	if err != nil {
		return fmt.Errorf("retrain: prepare %s: %w", dir, err)
	}
	return nil
}

func appendHistory(ctx context.Context, stateURI string, e *HistoryEntry) error {
	uri := storage.Join(stateURI, "history.jsonl")
	var hist []HistoryEntry
	if ok, err := storage.Exists(ctx, uri); err != nil {
		return err
	} else if ok {
		if hist, err = jsonfile.ReadLines[HistoryEntry](ctx, uri); err != nil {
			return fmt.Errorf("retrain: history: %w", err)
		}
	}
	// A crashed attempt of this run may have appended already.
	for len(hist) > 0 && hist[len(hist)-1].Run >= e.Run {
		hist = hist[:len(hist)-1]
	}
	hist = append(hist, *e)
	if err := jsonfile.WriteLines(ctx, uri, hist); err != nil {
		return err
	}
	return plotHistory(ctx, storage.Join(stateURI, "history.png"), hist)
}

func plotHistory(ctx context.Context, uri string, hist []HistoryEntry) error {
	var series []report.Series
	for _, c := range report.Columns {
		s := report.Series{Name: c.Title}
		for _, h := range hist {
			if v, ok := h.Metrics[c.Key]; ok {
				s.X = append(s.X, float64(h.Run))
				s.Y = append(s.Y, v)
			}
		}
		if len(s.X) > 0 {
			series = append(series, s)
		}
	}
	if len(series) == 0 {
		return nil
	}
	return report.LinePlot(ctx, uri, "sslight retrain: metrics over runs", "run", "%", series)
}

// itemSampleKey maps a source key to the sample key shards and manifests
// use.
func itemSampleKey(key string) string { return transforms.SampleKey(key) }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "a fresh initialisation"
	}
	return s
}
