package source

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sslight-go/sslight/sinks/storage"
)

// normalizeRoot makes local roots absolute and clean (workers may run
// elsewhere) and strips trailing slashes from URIs. Roots on object stores
// may not hold glob characters: a listing is a prefix, and a root with '*'
// almost surely means a pattern that would not be expanded.
func normalizeRoot(root string) (string, error) {
	if root == "" {
		return "", fmt.Errorf("source: empty root")
	}
	if storage.IsLocal(root) {
		abs, err := filepath.Abs(root)
		if err != nil {
			return "", fmt.Errorf("source: root %s: %w", root, err)
		}
		return abs, nil
	}
	r := strings.TrimRight(root, "/")
	if strings.HasSuffix(r, ":") { // "gs://" alone
		return "", fmt.Errorf("source: root %s names no bucket", root)
	}
	if strings.ContainsAny(r[len(storage.Scheme(r))+3:], "*?[") {
		return "", fmt.Errorf("source: root %s contains a glob character (* ? [): a root is a folder or prefix, not a pattern", root)
	}
	return r, nil
}

// join returns the URI of rel (a slash path) under root.
func join(root, rel string) string {
	if storage.IsLocal(root) {
		return filepath.Join(root, filepath.FromSlash(rel))
	}
	return root + "/" + rel
}

// parent returns the folder part of a local path or URI.
func parent(uri string) string {
	if storage.IsLocal(uri) {
		return filepath.Dir(uri)
	}
	return uri[:strings.LastIndexByte(uri, '/')]
}

// walk lists every file under root, sorted by Rel (see storage.Walk for
// what counts as a file on each scheme).
func walk(ctx context.Context, root string) ([]storage.Object, error) {
	objs, err := storage.Walk(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return objs, nil
}
