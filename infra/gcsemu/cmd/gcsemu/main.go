// Command gcsemu runs the GCS emulator (fake-gcs-server, in memory) as a
// process of its own, so that launchers and Beam workers in other
// processes reach one store over HTTP, as they would reach GCS, and no
// test depends on sharing memory with the emulator.
//
//	gcsemu --bucket b [--seed DIR=b/prefix] [--port 0] [--exit-on-stdin-eof]
//
// Once it serves, it prints one line, STORAGE_EMULATOR_HOST=host:port (the
// value the storage client wants), on stdout. It stops on SIGINT or
// SIGTERM, and with --exit-on-stdin-eof when its standard input closes
// (the parent that holds the pipe died or let go), so it never outlives a
// test that started it.
package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// repeated collects a repeatable flag.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port to listen on (0: any free port)")
	var buckets, seeds repeated
	flag.Var(&buckets, "bucket", "create this (empty) bucket (repeatable)")
	flag.Var(&seeds, "seed", "upload the files under DIR as objects under BUCKET/PREFIX, DIR=BUCKET/PREFIX (repeatable; the bucket is created)")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "exit when standard input reaches its end")
	flag.Parse()
	if err := run(*host, *port, buckets, seeds, *stdinEOF); err != nil {
		fmt.Fprintln(os.Stderr, "gcsemu:", err)
		os.Exit(1)
	}
}

func run(host string, port int, buckets, seeds []string, stdinEOF bool) error {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: host, Port: uint16(port), PublicHost: host})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer srv.Stop()
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	for _, s := range seeds {
		n, err := seed(srv, s)
		if err != nil {
			return fmt.Errorf("--seed %s: %w", s, err)
		}
		fmt.Fprintf(os.Stderr, "gcsemu: %s: %d objects\n", s, n)
	}
	u, err := url.Parse(srv.URL())
	if err != nil {
		return fmt.Errorf("emulator URL %q: %w", srv.URL(), err)
	}
	fmt.Printf("STORAGE_EMULATOR_HOST=%s\n", u.Host)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	if stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop <- syscall.SIGTERM
		}()
	}
	<-stop
	return nil
}

// seed uploads the files under DIR to BUCKET/PREFIX (spec DIR=BUCKET/PREFIX).
func seed(srv *fakestorage.Server, spec string) (int, error) {
	dir, dest, ok := strings.Cut(spec, "=")
	if !ok || dir == "" || dest == "" {
		return 0, fmt.Errorf("want DIR=BUCKET/PREFIX")
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(dest, "gs://"), "/")
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: path.Join(prefix, filepath.ToSlash(rel))}, Content: b})
		n++
		return nil
	})
	return n, err
}
