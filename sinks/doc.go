// Package sinks is the home of sslight's on-disk formats. It holds no code of
// its own; each format lives in a sub-package with one job. The output side
// of a prepare run:
//
//   - storage: read helpers and an atomic writer over Beam's filesystem
//     registry (local paths, gs://, memfs://); a file becomes visible only
//     when it is complete.
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
