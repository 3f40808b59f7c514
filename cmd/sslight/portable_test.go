package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sslight-go/sslight/internal/portable"
	"github.com/sslight-go/sslight/pipelines/prepare"
	"github.com/sslight-go/sslight/sinks/storage"
)

// TestPipelinesOutOfProcess runs prepare and the evaluation's feature
// extraction as Dataflow and Flink run a Go pipeline: submitted through
// the Job API to a Prism job server in its own process, executed by SDK
// workers that an EXTERNAL worker pool (the Go boot loader, from the
// pinned Beam module) starts from the staged sslight binary, every
// DoFn deserialised from its registered type. The outputs must be byte
// for byte those of the in-process run. One run goes through a GCS
// emulator in a process of its own, which only the launcher is told
// about: the workers reach it through the storage settings the job
// carries (the pool's environment has no STORAGE_EMULATOR_HOST).
// SSLIGHT_PHOTOS points the prepare runs at another photo folder and
// SSLIGHT_PORTABLE_EPOCHS sets their epochs (default 2): the benchmark
// figure uses the 76 shared photos × 8 epochs.
func TestPipelinesOutOfProcess(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH: cannot build Prism's job server, the boot loader and the emulator")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	moduleDir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "env", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	cacheRoot := strings.TrimSpace(string(out))
	lockWorkerPoolPort(t, cacheRoot)
	bins, err := portable.Build(ctx, goBin, moduleDir, cacheRoot, testBuildTags())
	if err != nil {
		t.Fatal(err)
	}

	logs := t.TempDir()
	before, since := portable.Leftovers(), time.Now()
	t.Cleanup(func() {
		if err := portable.RemoveNew(before, since); err != nil {
			t.Errorf("removing the boot loader's worker copies: %v", err)
		}
	})
	prism, endpoint, err := portable.StartPrism(ctx, bins.Prism, logs, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prism.Stop)
	poolEnv := portable.Env(storageEmulatorEnv, storage.EnvAttempts, storage.EnvTimeout)
	pool, poolAddr, err := portable.StartWorkerPool(ctx, bins.Boot, poolEnv, logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Stop)
	remote := portable.UniversalFlags(endpoint, poolAddr, bins.SSLight)
	sslight := func(t *testing.T, env []string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bins.SSLight, args...)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sslight %s: %v\n%s\n(job server and worker logs under %s)", strings.Join(args, " "), err, b, logs)
		}
	}
	launcherEnv := portable.Env(storageEmulatorEnv)
	photos := os.Getenv("SSLIGHT_PHOTOS")
	if photos == "" {
		photos = filepath.Join(moduleDir, "testdata", "photos")
	}
	epochs := os.Getenv("SSLIGHT_PORTABLE_EPOCHS") // more epochs for the throughput figure
	if epochs == "" {
		epochs = "2"
	}
	prepareArgs := []string{"prepare", "--config", "dino_cnn_baseline", "--format", "folder", "--source", photos, "--epochs", epochs, "--quiet"}

	t.Run("prepare", func(t *testing.T) {
		root := t.TempDir()
		in, ex := filepath.Join(root, "in-process"), filepath.Join(root, "out-of-process")
		sslight(t, launcherEnv, append(prepareArgs, "--out", in)...)
		sslight(t, launcherEnv, append(append(prepareArgs, "--out", ex), remote...)...)
		compareTrees(t, in, ex, map[string]bool{prepare.SummaryFileName: true})
		a, b := readSummary(t, in), readSummary(t, ex)
		if a.Runner != "prism" || b.Runner != "universal" || a.Samples != b.Samples || a.Samples == 0 {
			t.Errorf("in-process %s %d samples, out of process %s %d samples", a.Runner, a.Samples, b.Runner, b.Samples)
		}
		t.Logf("prepare of %d images·epochs: in-process %.1f images/s (%.2f s), out of process %.1f images/s (%.2f s)",
			a.Samples+a.DeadLetters, a.ImagesPerSec, a.WallSeconds, b.ImagesPerSec, b.WallSeconds)
	})

	t.Run("eval", func(t *testing.T) {
		root := t.TempDir()
		train, val, ckpt := filepath.Join(root, "train"), filepath.Join(root, "val"), filepath.Join(root, "ckpt")
		exportMini(t, "train", train, 3)
		exportMini(t, "t10k", val, 2)
		writeCheckpoint(t, ckpt)
		args := []string{"eval", "--checkpoint", ckpt, "--train", train, "--val", val, "--format", "imagenet", "--protocols", "knn"}
		in, ex := filepath.Join(root, "in-process"), filepath.Join(root, "out-of-process")
		sslight(t, launcherEnv, append(args, "--out", in)...)
		sslight(t, launcherEnv, append(append(args, "--out", ex), remote...)...)
		// The features and their indexes; the report's wall times differ.
		compareTrees(t, filepath.Join(in, "features"), filepath.Join(ex, "features"), map[string]bool{"summary.json": true})
		ra, rb := readReport(t, in), readReport(t, ex)
		if len(ra.Rows) == 0 || fmt.Sprint(ra.Rows[0].Metrics) != fmt.Sprint(rb.Rows[0].Metrics) {
			t.Errorf("kNN metrics differ: in-process %v, out of process %v", ra.Rows, rb.Rows)
		}
	})

	t.Run("prepare on the GCS emulator", func(t *testing.T) {
		emu, host, err := portable.StartEmulator(ctx, bins.Emulator, []string{"--seed", photos + "=b/photos"}, logs)
		if err != nil {
			t.Fatal(err)
		}
		defer emu.Stop()
		env := append(portable.Env(storageEmulatorEnv), storageEmulatorEnv+"="+host) // the launcher's only
		args := []string{"prepare", "--config", "dino_cnn_baseline", "--format", "folder", "--source", "gs://b/photos", "--epochs", "2", "--quiet"}
		sslight(t, env, append(args, "--out", "gs://b/in-process")...)
		sslight(t, env, append(append(args, "--out", "gs://b/out-of-process"), remote...)...)
		a, b := emulatorObjects(t, host, "b", "in-process/"), emulatorObjects(t, host, "b", "out-of-process/")
		if len(a) == 0 || len(a) != len(b) {
			t.Fatalf("in-process wrote %d objects, out of process %d", len(a), len(b))
		}
		for name, body := range a {
			if name == prepare.SummaryFileName {
				continue
			}
			got := bytes.ReplaceAll(b[name], []byte("gs://b/out-of-process"), []byte("gs://b/in-process"))
			if !bytes.Equal(got, body) {
				t.Errorf("%s differs between the in-process and the out-of-process run", name)
			}
		}
	})
}

// storageEmulatorEnv is the variable the storage client reads the
// emulator's address from.
const storageEmulatorEnv = "STORAGE_EMULATOR_HOST"

// lockWorkerPoolPort holds an exclusive lock for the rest of the test, so
// that two runs of it on one machine take turns on the boot loader's
// fixed worker-pool port.
func lockWorkerPoolPort(t *testing.T, cacheRoot string) {
	t.Helper()
	dir := filepath.Join(cacheRoot, "sslight-portable")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "worker-pool-port.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// testBuildTags are the -tags this test binary was built with, for the
// sslight binary the workers run.
func testBuildTags() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-tags" {
				return s.Value
			}
		}
	}
	return ""
}

func readSummary(t *testing.T, dir string) prepare.Summary {
	t.Helper()
	var s prepare.Summary
	b, err := os.ReadFile(filepath.Join(dir, prepare.SummaryFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// compareTrees checks that a and b hold the same files with the same
// bytes, except the names in skip, once b's own path is written as a's
// (the manifest and indexes name their files by full path).
func compareTrees(t *testing.T, a, b string, skip map[string]bool) {
	t.Helper()
	files := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || skip[d.Name()] {
				return err
			}
			body, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			m[rel] = body
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	fa, fb := files(a), files(b)
	var names []string
	for n := range fa {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(fa) == 0 || len(fa) != len(fb) {
		t.Fatalf("%s holds %d files, %s %d", a, len(fa), b, len(fb))
	}
	for _, n := range names {
		if got := bytes.ReplaceAll(fb[n], []byte(b), []byte(a)); !bytes.Equal(got, fa[n]) {
			t.Errorf("%s differs between the in-process and the out-of-process run", n)
		}
	}
}

// emulatorObjects reads every object under prefix of bucket from the
// emulator at host through the JSON API, by name relative to prefix.
func emulatorObjects(t *testing.T, host, bucket, prefix string) map[string][]byte {
	t.Helper()
	get := func(u string) []byte {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %v", u, resp.Status, err)
		}
		return b
	}
	base := "http://" + host + "/storage/v1/b/" + bucket + "/o"
	var list struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
		NextPageToken string `json:"nextPageToken"`
	}
	if err := json.Unmarshal(get(base+"?prefix="+url.QueryEscape(prefix)), &list); err != nil {
		t.Fatal(err)
	}
	if list.NextPageToken != "" {
		t.Fatal("more objects than one listing page")
	}
	out := map[string][]byte{}
	for _, it := range list.Items {
		out[strings.TrimPrefix(it.Name, prefix)] = get(base + "/" + url.PathEscape(it.Name) + "?alt=media")
	}
	return out
}
