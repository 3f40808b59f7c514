package beamfs

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/hooks"

	"github.com/sslight-go/sslight/sinks/storage"
)

// storageHook names the Beam worker hook that carries the launcher's
// storage settings to its workers.
const storageHook = "sslight:storage"

// EmulatorEnv is the variable the storage client reads the GCS emulator's
// host:port from.
const EmulatorEnv = "STORAGE_EMULATOR_HOST"

func init() { hooks.RegisterHook(storageHook, storageHookFactory) }

// storageHookFactory is the hook for the launcher's arguments.
func storageHookFactory(args []string) hooks.Hook {
	return hooks.Hook{Init: func(ctx context.Context) (context.Context, error) {
		return ctx, applyStorageSettings(args)
	}}
}

// ForwardStorageSettings makes the pipelines this process submits from
// now on carry its storage settings to their workers: the GCS emulator
// (STORAGE_EMULATOR_HOST, when set) and the retry policy in force
// (storage.CurrentPolicy: the environment's SSLIGHT_STORAGE_ATTEMPTS and
// SSLIGHT_STORAGE_TIMEOUT, or SetPolicy's). Runners that keep the workers
// in another process (Dataflow, Flink, a Prism job server with an
// external worker pool) start them with their own environment, not the
// launcher's: without this, a launcher pointed at an emulator would have
// its workers go to real GCS, and a policy set for a run would stop at
// the launcher. Beam runs the hook on every worker before its first
// bundle (hooks.RunInitHooks), through the pipeline options.
func ForwardStorageSettings() error {
	p, err := storage.CurrentPolicy()
	if err != nil {
		return err
	}
	return hooks.EnableHook(storageHook, storageArgs(os.Getenv(EmulatorEnv), p)...)
}

// storageArgs encodes the settings as the hook's arguments.
func storageArgs(emulator string, p storage.Policy) []string {
	return []string{
		"emulator=" + emulator,
		"attempts=" + strconv.Itoa(p.Attempts),
		"timeout=" + p.Timeout.String(),
		"backoff=" + p.Backoff.String(),
		"max_backoff=" + p.MaxBackoff.String(),
	}
}

// applyStorageSettings is the hook on a worker: it points the storage
// client at the launcher's emulator, if it had one, and takes its policy.
func applyStorageSettings(args []string) error {
	p := storage.DefaultPolicy()
	var emulator string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("sslight storage hook: argument %q is not key=value", a)
		}
		var err error
		switch k {
		case "emulator":
			emulator = v
		case "attempts":
			p.Attempts, err = strconv.Atoi(v)
		case "timeout":
			p.Timeout, err = time.ParseDuration(v)
		case "backoff":
			p.Backoff, err = time.ParseDuration(v)
		case "max_backoff":
			p.MaxBackoff, err = time.ParseDuration(v)
		default:
			err = fmt.Errorf("unknown setting")
		}
		if err != nil {
			return fmt.Errorf("sslight storage hook: %q: %w", a, err)
		}
	}
	if emulator != "" {
		if err := os.Setenv(EmulatorEnv, emulator); err != nil {
			return err
		}
	}
	if err := storage.SetPolicy(p); err != nil {
		return fmt.Errorf("sslight storage hook: %w", err)
	}
	return nil
}
