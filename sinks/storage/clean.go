package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StaleTemporaryAge is the age past which CleanTemporaries takes a
// temporary for a leftover. A temporary lives as long as one file is being
// written (a shard: seconds to minutes), so an hour-old one belongs to a
// process that died, not to a live writer beside this one.
const StaleTemporaryAge = time.Hour

// CleanTemporaries removes the temporaries this package's Writers leave
// when their process is killed (files named ".tmp-*", see Writer) under
// prefix, if older than olderThan, and returns the names it removed. Only
// local paths have any: gs:// and memfs:// writes create no temporary
// object (a gs:// object appears when its upload completes), so there it
// does nothing. A missing prefix holds nothing to clean. Unreadable
// folders and failed removals are reported together in the error, after
// everything else was cleaned.
//
// Callers: `sslight prepare` (prepare.Run) cleans its output at start; the
// trainer should clean its output folder the same way when it starts.
func CleanTemporaries(ctx context.Context, prefix string, olderThan time.Duration) ([]string, error) {
	if Scheme(prefix) != "" {
		if _, err := backendFor(prefix); err != nil {
			return nil, fmt.Errorf("clean temporaries under %s: %w", prefix, err)
		}
		return nil, nil
	}
	cutoff := time.Now().Add(-olderThan)
	var removed []string
	var errs []error
	err := filepath.WalkDir(prefix, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == prefix && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			errs = append(errs, err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			return nil // gone meanwhile, or young enough to be a live write
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			return nil
		}
		removed = append(removed, p)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("clean temporaries under %s: %w", prefix, err)
	}
	return removed, nil
}
