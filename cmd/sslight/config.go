package main

import (
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/configs"
)

// loadConfig loads a config file or preset and applies --set overrides
// (KEY=VALUE, in order).
func loadConfig(path string, sets []string) (*configs.Config, error) {
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
	return cfg, nil
}
