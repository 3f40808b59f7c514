package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/sinks/storage"
)

// storageFlags are the flags every command that works on object storage
// takes: how long one operation on gs:// keeps retrying (storage.Policy).
type storageFlags struct {
	fs       *cli.FlagSet
	attempts int
	timeout  durationFlag
}

// durationFlag is a duration flag whose help shows no "default 0s": its
// default is the environment's or the policy's.
type durationFlag struct{ d time.Duration }

func (f *durationFlag) String() string {
	if f == nil || f.d == 0 {
		return ""
	}
	return f.d.String()
}

func (f *durationFlag) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("want a duration such as 90s or 5m")
	}
	f.d = d
	return nil
}

// addStorageFlags adds --storage-attempts and --storage-timeout to fs.
func addStorageFlags(fs *cli.FlagSet) *storageFlags {
	s := &storageFlags{fs: fs}
	def := storage.DefaultPolicy()
	fs.IntVar(&s.attempts, "storage-attempts", 0, fmt.Sprintf(
		"tries of one object-storage operation (a read, a write, a listing page) before it gives up, at least 1 (default $%s, else %d)",
		storage.EnvAttempts, def.Attempts))
	fs.Var(&s.timeout, "storage-timeout", fmt.Sprintf(
		"bound on one object-storage operation with its retries and pauses, a `duration` such as 90s or 5m (default $%s, else %s)",
		storage.EnvTimeout, def.Timeout))
	return s
}

// apply sets the process's storage policy after Parse: the environment's
// (SSLIGHT_STORAGE_ATTEMPTS, SSLIGHT_STORAGE_TIMEOUT) with the flags given
// on top. A bad value of either is an error naming it, before any work.
func (s *storageFlags) apply() error {
	p, err := storage.PolicyFromEnv()
	if err != nil {
		return err
	}
	given := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["storage-attempts"] {
		if s.attempts < 1 {
			return fmt.Errorf("--storage-attempts %d: want at least 1", s.attempts)
		}
		p.Attempts = s.attempts
	}
	if given["storage-timeout"] {
		if s.timeout.d <= 0 {
			return fmt.Errorf("--storage-timeout %s: want a positive duration such as 90s or 5m", s.timeout.d)
		}
		p.Timeout = s.timeout.d
	}
	return storage.SetPolicy(p)
}
