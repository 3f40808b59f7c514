// Package transforms holds sslight's reusable Beam pieces: the DoFns and
// composite transforms of the preparation pipeline (shard assignment,
// per-shard decode + multi-crop + write, manifest and dead letters).
//
// Every DoFn is a thin adapter over a plain Go function in this package
// (BuildShard, AssignShard, BuildManifest) that is unit-tested without Beam.
// PolicyFromConfig turns a configuration's MULTI_VIEWS_TRANSFORMS section
// into the augment multi-crop policy those functions apply, so pipelines
// need not import augment.
// Sub-package source lists datasets (ImageNet folders, COCO, IDX, plain
// folders) from local paths or gs://.
package transforms
