package beamfs

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/hooks"

	"github.com/sslight-go/sslight/sinks/storage"
)

// TestStorageSettingsReachWorkers goes the way a remote worker gets the
// launcher's settings: ForwardStorageSettings enables the hook, the
// runner serialises the hooks into the pipeline options, and the worker
// deserialises and runs them before its first bundle. Afterwards the
// (here same) process points at the launcher's emulator and uses its
// retry policy.
func TestStorageSettingsReachWorkers(t *testing.T) {
	t.Setenv(EmulatorEnv, "127.0.0.1:4443")
	want := storage.DefaultPolicy()
	want.Attempts, want.Timeout = 3, 45*time.Second
	if err := storage.SetPolicy(want); err != nil { // the launcher's, from its flags or environment
		t.Fatal(err)
	}
	defer storage.SetPolicy(storage.DefaultPolicy())
	if err := ForwardStorageSettings(); err != nil {
		t.Fatal(err)
	}
	hooks.SerializeHooksToOptions() // the launcher's runner, at submission

	// The worker: its own environment, no emulator, default policy.
	os.Unsetenv(EmulatorEnv)
	if err := storage.SetPolicy(storage.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	// What the worker's harness deserialises: the options' "hooks" entry,
	// by hook name (running every enabled hook here would start Beam's
	// own, which need a real worker).
	var enabled map[string][]string
	if err := json.Unmarshal([]byte(beam.PipelineOptions.Get("hooks")), &enabled); err != nil {
		t.Fatal(err)
	}
	args, ok := enabled[storageHook]
	if !ok {
		t.Fatalf("the pipeline options carry no %s hook: %v", storageHook, enabled)
	}
	if _, err := storageHookFactory(args).Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv(EmulatorEnv); got != "127.0.0.1:4443" {
		t.Errorf("worker %s = %q, want the launcher's emulator", EmulatorEnv, got)
	}
	p, err := storage.CurrentPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if p != want {
		t.Errorf("worker policy %+v, want the launcher's %+v", p, want)
	}
}

// TestStorageSettingsWithoutEmulator: a launcher without an emulator
// leaves the worker's own STORAGE_EMULATOR_HOST alone; bad arguments are
// errors naming them.
func TestStorageSettingsWithoutEmulator(t *testing.T) {
	t.Setenv(EmulatorEnv, "worker-own:1")
	defer storage.SetPolicy(storage.DefaultPolicy())
	if err := applyStorageSettings(storageArgs("", storage.DefaultPolicy())); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv(EmulatorEnv); got != "worker-own:1" {
		t.Errorf("%s = %q, want the worker's own value kept", EmulatorEnv, got)
	}
	for _, bad := range [][]string{{"attempts=zero"}, {"colour=red"}, {"timeout"}, {"attempts=0"}} {
		if err := applyStorageSettings(bad); err == nil || !strings.Contains(err.Error(), "sslight storage") {
			t.Errorf("%v: no error", bad)
		}
	}
}
