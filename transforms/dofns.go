package transforms

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/transforms/source"
)

func init() {
	register.DoFn2x1[string, func(string, string), error](&AssignShardsFn{})
	register.DoFn5x1[context.Context, string, func(*string) bool, func(string), func(string), error](&WriteShardsFn{})
	register.Emitter2[string, string]()
	register.Emitter1[string]()
	register.Iter1[string]()
	beam.RegisterType(reflect.TypeOf((*augment.MultiCropPolicy)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*ShardBuilder)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*ManifestParams)(nil)).Elem())
}

// Progress counts the items the WriteShards DoFns of this process have
// finished (written or dead-lettered). Runners that execute the pipeline in
// this process (Prism, direct) make it a live progress figure; on remote
// runners it stays 0 and the runner's own UI shows progress.
var Progress atomic.Int64

// AssignShardsFn keys every listed item (a JSON source.Item line) to the
// shard it belongs to in every epoch, so a GroupByKey gathers each shard's
// items. Only these small records cross the shuffle, never pixels.
type AssignShardsFn struct {
	Epochs         int
	ShardsPerEpoch int
	Seed           uint64
}

// ProcessElement emits (ShardKey(epoch, shard), line) once per epoch.
func (f *AssignShardsFn) ProcessElement(line string, emit func(string, string)) error {
	var it source.Item
	if err := json.Unmarshal([]byte(line), &it); err != nil {
		return fmt.Errorf("listing line %q: %w", clip(line), err)
	}
	for e := 0; e < f.Epochs; e++ {
		emit(ShardKey(e, ShardOf(f.Seed, e, it.Key, f.ShardsPerEpoch)), line)
	}
	return nil
}

// WriteShardsFn builds and writes one shard per group with its Builder (a
// goroutine pool inside the DoFn: Prism runs a stage's elements one at a
// time, so parallelism has to live here). It emits the shard's shard.Info
// and the dead letters of its failed items as JSON strings. Emitters and
// metrics are touched only from the ProcessElement goroutine: they are not
// goroutine-safe.
type WriteShardsFn struct {
	// Builder is the configuration, serialised to the workers.
	Builder ShardBuilder
}

// MetricsNamespace is the namespace of sslight's Beam counters.
const MetricsNamespace = "sslight"

var (
	samplesCounter = beam.NewCounter(MetricsNamespace, "samples_written")
	shardsCounter  = beam.NewCounter(MetricsNamespace, "shards_written")
	bytesCounter   = beam.NewCounter(MetricsNamespace, "shard_bytes_written")
	deadCounter    = beam.NewCounter(MetricsNamespace, "dead_letters")
)

// ProcessElement builds the shard named by key from its items.
func (f *WriteShardsFn) ProcessElement(ctx context.Context, key string, lines func(*string) bool, emitInfo, emitDead func(string)) error {
	epoch, index, err := ParseShardKey(key)
	if err != nil {
		return err
	}
	job := ShardJob{Epoch: epoch, Index: index}
	var line string
	for lines(&line) {
		var it source.Item
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			return fmt.Errorf("shard %s: listing line %q: %w", key, clip(line), err)
		}
		job.Items = append(job.Items, it)
	}
	info, dead, err := f.Builder.Build(ctx, job)
	if err != nil {
		return fmt.Errorf("shard %s: %w", key, err)
	}
	if info != nil {
		b, _ := json.Marshal(info)
		emitInfo(string(b))
		samplesCounter.Inc(ctx, int64(info.Samples))
		shardsCounter.Inc(ctx, 1)
		bytesCounter.Inc(ctx, info.Bytes)
	}
	for _, d := range dead {
		b, _ := json.Marshal(d)
		emitDead(string(b))
		deadCounter.Inc(ctx, 1)
		beam.NewCounter(MetricsNamespace, "dead_letters_"+d.Stage).Inc(ctx, 1)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// MultiCropShards is the heart of the preparation pipeline: listed items
// (JSON source.Item lines) → shard keys per epoch → GroupByKey → one
// WriteShardsFn call per shard. It returns the written shards' infos and the
// dead letters, both as JSON strings.
func MultiCropShards(s beam.Scope, items beam.PCollection, assign *AssignShardsFn, write *WriteShardsFn) (infos, dead beam.PCollection) {
	s = s.Scope("MultiCropShards")
	keyed := beam.ParDo(s, assign, items)
	groups := beam.GroupByKey(s, keyed)
	return beam.ParDo2(s, write, groups)
}
