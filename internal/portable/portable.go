// Package portable runs sslight's pipelines the way Dataflow and Flink run
// a Go pipeline, with every piece in a process of its own: a Prism job
// server (Beam's Job API), an EXTERNAL worker pool (the Go SDK's container
// boot loader with --worker_pool, which starts SDK workers on request,
// fetches the staged worker binary and runs it), and, for gs:// paths, a
// GCS emulator (infra/gcsemu/cmd/gcsemu). The launcher submits with
// UniversalFlags; its workers then share nothing with it but gRPC, the
// staged binary, the pipeline options and the files and objects they
// read and write.
//
// Build compiles the helper binaries from the module's pinned
// dependencies (Beam's cmd/prism and container, the emulator, sslight
// itself) into a folder that outlives the run, so that a second build
// with a warm Go build cache relinks nothing.
package portable

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The import paths of the helper binaries.
const (
	PrismPackage    = "github.com/apache/beam/sdks/v2/go/cmd/prism"
	BootPackage     = "github.com/apache/beam/sdks/v2/go/container"
	EmulatorPackage = "github.com/sslight-go/sslight/infra/gcsemu/cmd/gcsemu"
	SSLightPackage  = "github.com/sslight-go/sslight/cmd/sslight"
)

// WorkerPoolPort is where the Go boot loader's worker pool listens: the
// port is fixed in its source (container/boot.go), as Flink's EXTERNAL
// environment expects.
const WorkerPoolPort = 50000

// Binaries are the built helper executables.
type Binaries struct {
	Prism, Boot, Emulator, SSLight string
}

// Build compiles the helpers with `go build` run in moduleDir (so the
// module's go.mod pins Beam's version) into a folder under cacheRoot
// named by the module folder, the tags and the Go version, and returns
// their paths. go build leaves an up-to-date binary alone, so with a warm
// build cache a rebuild takes about a second a binary. sslight is built
// with tags and -ldflags=-s -w, as a worker binary for a real runner
// usually is: a function registered with neither Beam nor the symbol
// table then fails here as it would there.
func Build(ctx context.Context, goBin, moduleDir, cacheRoot, tags string) (Binaries, error) {
	sum := sha256.Sum256([]byte(moduleDir + "|" + tags + "|" + runtime.Version()))
	dir := filepath.Join(cacheRoot, "sslight-portable", hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, err
	}
	b := Binaries{Prism: filepath.Join(dir, "prism"), Boot: filepath.Join(dir, "boot"),
		Emulator: filepath.Join(dir, "gcsemu"), SSLight: filepath.Join(dir, "sslight")}
	for _, c := range []struct {
		out, pkg string
		args     []string
	}{
		{b.Prism, PrismPackage, nil},
		{b.Boot, BootPackage, nil},
		{b.Emulator, EmulatorPackage, nil},
		{b.SSLight, SSLightPackage, []string{"-tags", tags, "-ldflags=-s -w"}},
	} {
		args := append(append([]string{"build", "-o", c.out}, c.args...), c.pkg)
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = moduleDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return b, nil
}

// Process is a helper process this package started.
type Process struct {
	Name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// start runs bin with args and env (nil: this process's environment) in
// the folder of logPath, its stderr (and stdout, unless pipeStdout asks
// for a pipe) written to logPath. The child dies with this process (Pdeathsig) and gets its own
// process group, which Stop kills.
func start(name, bin string, args, env []string, logPath string, pipeStdout bool) (*Process, io.ReadCloser, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	// The boot loader writes pipeline_options.json into its working
	// folder for each worker: keep it beside the logs.
	cmd.Dir = filepath.Dir(logPath)
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stdout io.ReadCloser
	if pipeStdout {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			log.Close()
			return nil, nil, err
		}
	} else {
		cmd.Stdout = log
	}
	// A pipe this process holds: helpers that watch stdin see it close
	// if this process dies.
	if _, err := cmd.StdinPipe(); err != nil {
		log.Close()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, stdout, nil
}

// Stop kills the process and everything it started (its process group)
// and waits for it.
func (p *Process) Stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

// Exited reports whether the process has ended, with its error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// FreePort returns a TCP port nothing listens on at the moment.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until addr accepts connections or p exits.
func waitListening(ctx context.Context, p *Process, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if done, perr := p.Exited(); done {
			return fmt.Errorf("%s exited before listening on %s: %v (log: %s)", p.Name, addr, perr, p.log.Name())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not listening on %s: %w (log: %s)", p.Name, addr, ctx.Err(), p.log.Name())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartPrism starts a Prism job server on a free port and returns it with
// its Job API endpoint (localhost:PORT). It shuts itself down after
// idle without a job, should it ever be left behind.
func StartPrism(ctx context.Context, bin, logDir string, idle time.Duration) (*Process, string, error) {
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	p, _, err := start("prism", bin, []string{"--job_port", strconv.Itoa(port), "--serve_http=false",
		"--idle_shutdown_timeout", idle.String(), "--log_level", "warn"}, nil, filepath.Join(logDir, "prism.log"), false)
	if err != nil {
		return nil, "", err
	}
	endpoint := "localhost:" + strconv.Itoa(port)
	if err := waitListening(ctx, p, endpoint); err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, endpoint, nil
}

// StartWorkerPool starts the boot loader as an EXTERNAL worker pool on
// WorkerPoolPort with environment env and returns it with its address.
// The workers it starts inherit env, not this process's environment:
// what they need from the launcher must come through the job.
func StartWorkerPool(ctx context.Context, bin string, env []string, logDir string) (*Process, string, error) {
	addr := "localhost:" + strconv.Itoa(WorkerPoolPort)
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, "", fmt.Errorf("port %d, where the Go boot loader's worker pool must listen (fixed in its source), is taken by another process", WorkerPoolPort)
	}
	p, _, err := start("worker pool", bin, []string{"--worker_pool"}, env, filepath.Join(logDir, "workerpool.log"), false)
	if err != nil {
		return nil, "", err
	}
	if err := waitListening(ctx, p, addr); err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, addr, nil
}

// StartEmulator starts the GCS emulator with the given gcsemu flags
// (--bucket, --seed) and returns it with its host:port, the value of
// STORAGE_EMULATOR_HOST.
func StartEmulator(ctx context.Context, bin string, flags []string, logDir string) (*Process, string, error) {
	p, stdout, err := start("gcs emulator", bin, append([]string{"--exit-on-stdin-eof"}, flags...), nil, filepath.Join(logDir, "gcsemu.log"), true)
	if err != nil {
		return nil, "", err
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		host, found := strings.CutPrefix(l, "STORAGE_EMULATOR_HOST=")
		if !ok || !found {
			p.Stop()
			return nil, "", fmt.Errorf("gcs emulator printed %q, not its address (log: %s)", l, p.log.Name())
		}
		return p, host, nil
	case <-ctx.Done():
		p.Stop()
		return nil, "", ctx.Err()
	}
}

// UniversalFlags are the pipeline options that submit a job to the job
// server at endpoint, with SDK workers from the EXTERNAL pool at pool
// running workerBinary (without --worker_binary the SDK would cross-build
// one without cgo).
func UniversalFlags(endpoint, pool, workerBinary string) []string {
	return []string{"--runner=universal", "--endpoint=" + endpoint, "--environment_type=EXTERNAL",
		"--environment_config=" + pool, "--worker_binary=" + workerBinary}
}

// Env returns this process's environment without the named variables.
func Env(without ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, w := range without {
			drop = drop || k == w
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// BootLeftovers lists what the boot loader leaves in /tmp for each worker
// it starts (a folder bin*/ holding a copy of the worker binary, named
// worker, and the staged artifacts under staged/), so a caller can
// remove what a run added: Leftovers before, RemoveNew after.
type BootLeftovers map[string]bool

// Leftovers snapshots the boot loader's leftovers now.
func Leftovers() BootLeftovers {
	out := BootLeftovers{}
	dirs, _ := filepath.Glob("/tmp/bin*")
	for _, d := range dirs {
		out[d] = true
	}
	return out
}

// RemoveNew removes the boot loader's worker copies made since before was
// taken (folders /tmp/bin* holding only a file named worker) and its
// staged worker binary if it is newer than since.
func RemoveNew(before BootLeftovers, since time.Time) error {
	var errs []error
	for d := range Leftovers() {
		if before[d] {
			continue
		}
		ents, err := os.ReadDir(d)
		if err != nil || len(ents) != 1 || ents[0].Name() != "worker" {
			continue // not one of the boot loader's
		}
		errs = append(errs, os.RemoveAll(d))
	}
	staged := filepath.Join("/tmp", "staged")
	ents, _ := os.ReadDir(staged)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && !e.IsDir() && !info.ModTime().Before(since) {
			errs = append(errs, os.Remove(filepath.Join(staged, e.Name())))
		}
	}
	return errors.Join(errs...)
}
