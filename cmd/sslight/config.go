package main

import (
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/configs"
)

// loadConfig loads a config file or preset, applies --set overrides
// (KEY=VALUE, in order), then the flags that override a key, given as key,
// value pairs: a flag left at its zero value ("" or "0") keeps the
// config's value.
func loadConfig(path string, sets []string, flags ...string) (*configs.Config, error) {
	if path == "" {
		return nil, fmt.Errorf("--config is required: a YAML file in the SSLight schema or a preset (%s)", strings.Join(configs.PresetNames(), ", "))
	}
	cfg, err := configs.Load(path)
	if err != nil {
		return nil, err
	}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: want KEY=VALUE", kv)
		}
		if err := cfg.Set(k, v); err != nil {
			return nil, err
		}
	}
	for i := 0; i+1 < len(flags); i += 2 {
		if v := flags[i+1]; v != "" && v != "0" {
			if err := cfg.Set(flags[i], v); err != nil {
				return nil, err
			}
		}
	}
	return cfg, nil
}
