package nn

import (
	"reflect"
	"runtime"

	"gorgonia.org/gorgonia"
)

// CloseMachine closes a gorgonia VM and lets its graph be freed at the next
// garbage collection. gorgonia's tape machine carries a finalizer (a no-op
// without CUDA), and everything a finalizable object references survives
// one extra GC cycle: a machine holds its whole graph, every op's output
// buffer included, so a process that compiled graph after graph (feature
// extraction per part) kept each dead graph alive for a cycle, the GC goal
// doubled, and a 60,000-image extraction peaked at 14.7 GB instead of the
// 2 GB its live graphs needed. The VM must not be used afterwards.
func CloseMachine(vm gorgonia.VM) {
	if vm == nil {
		return
	}
	vm.Close()
	if reflect.ValueOf(vm).Kind() == reflect.Pointer {
		runtime.SetFinalizer(vm, nil)
	}
}
