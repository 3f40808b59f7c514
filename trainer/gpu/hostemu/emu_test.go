//go:build cgo

package hostemu

import (
	"math"
	"os"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/cuda"
	"github.com/sslight-go/sslight/trainer/gpu/kernels"
)

// TestTableIsCurrent fails when a kernel was added or changed without
// running go generate.
func TestTableIsCurrent(t *testing.T) {
	b, err := os.ReadFile("zz_kernels.h")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != kernels.EmuTable() {
		t.Fatal("zz_kernels.h is stale: run go generate ./trainer/gpu/hostemu")
	}
	var names []string
	for _, k := range kernels.Kernels() {
		names = append(names, k.Name)
	}
	if got := strings.Join(Kernels(), " "); got != strings.Join(names, " ") {
		t.Fatalf("the emulation has kernels %s, the sources %s", got, strings.Join(names, " "))
	}
}

func upload(t *testing.T, d *Device, v []float32) cuda.DevPtr {
	t.Helper()
	p, err := d.Malloc(4 * len(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CopyHtoD(p, v, 0); err != nil {
		t.Fatal(err)
	}
	return p
}

func download(t *testing.T, d *Device, p cuda.DevPtr, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := d.CopyDtoH(out, p, 0); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBarriersAndSharedMemory runs the softmax kernel, two shared-memory
// tree reductions (a maximum, a sum) with a barrier per level, over rows
// longer than a block, against the plain computation.
func TestBarriersAndSharedMemory(t *testing.T) {
	d := New()
	defer d.Close()
	const rows, n = 3, 1000
	x := make([]float32, rows*n)
	for i := range x {
		x[i] = float32(i%17)/4 - 1.5
	}
	p := upload(t, d, x)
	if err := d.Launch("softmax_rows", cuda.D1(rows), cuda.D1(256), 0, 0, p, n); err != nil {
		t.Fatal(err)
	}
	got := download(t, d, p, rows*n)
	for r := 0; r < rows; r++ {
		row := x[r*n : (r+1)*n]
		m := row[0]
		for _, v := range row {
			m = max(m, v)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - m))
		}
		for i, v := range row {
			want := float32(math.Exp(float64(v-m))) * float32(1/sum)
			if math.Abs(float64(got[r*n+i]-want)) > 1e-7 {
				t.Fatalf("row %d element %d: %g, want %g", r, i, got[r*n+i], want)
			}
		}
	}
}

func TestLaunchLimitsAndMemoryChecks(t *testing.T) {
	d := New()
	defer d.Close()
	p, _ := d.Malloc(16)
	for _, tc := range []struct {
		grid, block cuda.Dim3
		shmem       int
	}{
		{cuda.D1(1), cuda.D1(2048), 0},
		{cuda.D3(1, 70000, 1), cuda.D1(32), 0},
		{cuda.D1(1), cuda.D1(32), 64 << 10},
		{cuda.D1(0), cuda.D1(32), 0},
	} {
		if err := d.Launch("add_to", tc.grid, tc.block, tc.shmem, 0, p, p, 4); err == nil {
			t.Errorf("grid %v block %v shmem %d accepted", tc.grid, tc.block, tc.shmem)
		}
	}
	if err := d.Launch("add_to", cuda.D1(1), cuda.D1(32), 0, 0, p, p); err == nil {
		t.Error("a missing argument was accepted")
	}
	if err := d.Launch("nope", cuda.D1(1), cuda.D1(1), 0, 0); err == nil {
		t.Error("an unknown kernel was accepted")
	}
	if err := d.CopyHtoD(p+8, make([]float32, 4), 0); err == nil {
		t.Error("a copy past the allocation's end was accepted")
	}
	got := download(t, d, p, 4)
	if !math.IsNaN(float64(got[0])) {
		t.Errorf("fresh memory reads %g, want NaN (the poison)", got[0])
	}
	if err := d.Free(p); err != nil || d.Live() != 0 {
		t.Fatalf("Free: %v, %d bytes live", err, d.Live())
	}
	if err := d.Free(p); err == nil {
		t.Error("double free accepted")
	}
}
