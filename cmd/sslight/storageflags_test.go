package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/sinks/storage"
)

// keepPolicy restores the process's storage policy after the test.
func keepPolicy(t *testing.T) {
	t.Helper()
	old, _ := storage.CurrentPolicy()
	t.Cleanup(func() { storage.SetPolicy(old) })
}

// TestStorageFlags: the flags override the environment, which overrides
// DefaultPolicy, field by field; a bad flag or environment value is an
// error naming it.
func TestStorageFlags(t *testing.T) {
	def := storage.DefaultPolicy()
	for _, tc := range []struct {
		name     string
		env      map[string]string
		args     []string
		attempts int
		timeout  time.Duration
		err      string
	}{
		{name: "defaults", attempts: def.Attempts, timeout: def.Timeout},
		{name: "flags", args: []string{"--storage-attempts", "3", "--storage-timeout", "45s"}, attempts: 3, timeout: 45 * time.Second},
		{name: "environment", env: map[string]string{storage.EnvAttempts: "9", storage.EnvTimeout: "5m"}, attempts: 9, timeout: 5 * time.Minute},
		{name: "a flag over the environment", env: map[string]string{storage.EnvAttempts: "9", storage.EnvTimeout: "5m"},
			args: []string{"--storage-attempts=1"}, attempts: 1, timeout: 5 * time.Minute},
		{name: "no attempt", args: []string{"--storage-attempts", "0"}, err: "--storage-attempts 0: want at least 1"},
		{name: "negative attempts", args: []string{"--storage-attempts=-2"}, err: "--storage-attempts -2: want at least 1"},
		{name: "zero timeout", args: []string{"--storage-timeout", "0s"}, err: "--storage-timeout 0s: want a positive duration"},
		{name: "negative timeout", args: []string{"--storage-timeout=-1m"}, err: "--storage-timeout -1m0s: want a positive duration"},
		{name: "not a duration", args: []string{"--storage-timeout", "soon"}, err: `invalid value "soon" for flag --storage-timeout: want a duration`},
		{name: "bad environment", env: map[string]string{storage.EnvTimeout: "forever"}, args: []string{"--storage-attempts", "3"},
			err: storage.EnvTimeout + `="forever"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keepPolicy(t)
			for _, k := range []string{storage.EnvAttempts, storage.EnvTimeout} {
				t.Setenv(k, tc.env[k])
				if _, ok := tc.env[k]; !ok {
					os.Unsetenv(k)
				}
			}
			fs := cli.NewFlagSet("x", "", "")
			fs.SetOutput(io.Discard)
			sf := addStorageFlags(fs)
			err := fs.Parse(tc.args)
			if err == nil {
				err = sf.apply()
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := storage.CurrentPolicy()
			if err != nil || p.Attempts != tc.attempts || p.Timeout != tc.timeout || p.Backoff != def.Backoff {
				t.Errorf("policy %+v (%v), want %d attempts and %s with the default backoff", p, err, tc.attempts, tc.timeout)
			}
		})
	}
}

// TestCommandsTakeStorageFlags: every command that works on object
// storage takes the flags and refuses a bad value, or a bad
// SSLIGHT_STORAGE_* value, before it does anything (here: before it would
// complain about its missing required flags or read its config).
func TestCommandsTakeStorageFlags(t *testing.T) {
	ctx := context.Background()
	for name, run := range map[string]func(context.Context, []string) error{
		"prepare": runPrepare, "pretrain": runPretrain, "eval": runEvalClassify, "eval coco": runEvalCOCO,
		"run": runRun, "retrain": runRetrain,
	} {
		t.Run(name, func(t *testing.T) {
			keepPolicy(t)
			err := run(ctx, []string{"--storage-attempts", "0"})
			if err == nil || !strings.Contains(err.Error(), "--storage-attempts 0") {
				t.Errorf("--storage-attempts 0: %v", err)
			}
			t.Setenv(storage.EnvAttempts, "many")
			err = run(ctx, []string{"--storage-timeout", "1m"})
			if err == nil || !strings.Contains(err.Error(), storage.EnvAttempts) {
				t.Errorf("%s=many: %v", storage.EnvAttempts, err)
			}
		})
	}
}
