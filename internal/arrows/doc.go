// Package arrows checks, at link time, the import arrows DESIGN.md draws:
// trainer/, augment/ and sinks/ link no Apache Beam package, and no package
// of the module imports Beam's own gcs or memfs filesystems (sinks/storage
// is the storage layer; transforms/beamfs adapts it to Beam). It has only
// tests.
package arrows
