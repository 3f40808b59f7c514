// Package configs is sslight's configuration: one struct tree that mirrors the
// YAML schema of the SSLight reference implementation (src/config/defaults.py),
// strict parsing with line-numbered errors, flag overrides, validation, the
// embedded presets, and the hashes stamped into shards, manifests and
// checkpoints.
//
// A user can pass any SSLight experiment YAML unchanged: [Parse] starts from
// [Default] (the reference's defaults) and overlays the file. Unlike the
// reference, an unknown key is an error that names the full dotted key and
// the closest valid one ([UnknownKeyError]), and a value of the wrong type is
// an error naming the key and line ([TypeError]).
//
// The usual sequence in a command is
//
//	cfg, err := configs.Load(flagConfig) // a file, "preset:<name>" or a bare preset name
//	for _, kv := range overrides {
//		err = cfg.Set(kv.Key, kv.Value) // flags override the YAML
//	}
//	err = cfg.Validate()
//	stamp := cfg.Hash()
//
// Parsing and validation are separate on purpose: flags are applied between
// them, and a value that is only valid together with an override (for
// example SOLVER.WARMUP_ITERS with SOLVER.WARMUP_EPOCHS: 0) must not be
// rejected early.
//
// A few keys are sslight extensions that the reference does not have (see
// README.md in this folder); they all default to values that leave the
// reference's behaviour unchanged, so reference YAMLs mean the same here.
//
// The package is a leaf: it imports only the standard library and
// gopkg.in/yaml.v3, so every other package can depend on it.
package configs
