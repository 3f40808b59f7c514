// Package sinks is the home of sslight's on-disk formats. It holds no code of
// its own; each format lives in a sub-package with one job. The output side
// of a prepare run:
//
//   - storage: the one storage layer (local paths, gs:// through
//     cloud.google.com/go/storage, memfs://): reads, listings, globs and
//     atomic writes, every gs:// call retried under one bounded policy; a
//     file becomes visible only when it is complete.
//   - npy: the NumPy .npy format (v1.0 writer, strict reader).
//   - shard: WebDataset-style tar shards of multi-crop samples, their
//     UUIDv5 names, a streaming writer and a verifying reader.
//   - manifest: manifest.json, the record of one prepare run.
//   - deadletter: dead-letter.jsonl, the inputs that did not make it.
//   - jsonfile: atomic JSON and JSON Lines writers (summary.json, …).
//
// Nothing here constructs Beam pipelines; transforms/ adapts these writers
// into DoFns.
package sinks
