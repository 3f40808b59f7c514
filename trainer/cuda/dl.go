package cuda

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Dlopen opens a shared library with its symbols global (the libraries
// opened later, such as NVRTC's builtins, resolve against them).
func Dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

// binder registers a library's functions into Go function variables and
// remembers the required ones it lacks.
type binder struct {
	lib     *Library
	missing []string
}

// fn binds fptr to the first of names the library exports; a missing
// function is recorded and fn reports false.
func (b *binder) fn(fptr any, names ...string) bool {
	if b.optional(fptr, names...) {
		return true
	}
	b.missing = append(b.missing, names[0])
	return false
}

// optional binds fptr like fn but records nothing when the function is
// missing.
func (b *binder) optional(fptr any, names ...string) bool {
	for _, n := range names {
		if sym, err := purego.Dlsym(b.lib.handle, n); err == nil && sym != 0 {
			purego.RegisterFunc(fptr, sym)
			return true
		}
	}
	return false
}

func (b *binder) err() error {
	if len(b.missing) == 0 {
		return nil
	}
	return fmt.Errorf("cuda: the %s at %s lacks %s (too old a version?)", b.lib.Spec.Name, b.lib.Path, strings.Join(b.missing, ", "))
}

// cmem is C memory from libc's malloc, for what a C function must read
// through pointers (arrays of strings, kernel parameters): Go memory that
// holds pointers may not be handed to C.
var cmem struct {
	once   sync.Once
	err    error
	malloc func(n uintptr) unsafe.Pointer
	free   func(p unsafe.Pointer)
}

func cmemInit() error {
	cmem.once.Do(func() {
		var h uintptr
		for _, name := range []string{"libc.so.6", "libc.so"} {
			if h, cmem.err = Dlopen(name); cmem.err == nil {
				break
			}
		}
		if cmem.err != nil {
			cmem.err = fmt.Errorf("cuda: libc: %w", cmem.err)
			return
		}
		purego.RegisterLibFunc(&cmem.malloc, h, "malloc")
		purego.RegisterLibFunc(&cmem.free, h, "free")
	})
	return cmem.err
}

// cBytes returns n bytes of C memory and their address.
func cBytes(n int) ([]byte, unsafe.Pointer, error) {
	if err := cmemInit(); err != nil {
		return nil, nil, err
	}
	p := cmem.malloc(uintptr(n))
	if p == nil {
		return nil, nil, fmt.Errorf("cuda: malloc(%d) failed", n)
	}
	return unsafe.Slice((*byte)(p), n), p, nil
}

func cFree(p unsafe.Pointer) {
	if p != nil {
		cmem.free(p)
	}
}

// cStrings copies strs into C memory as a NULL-terminated char*[] and
// returns the array and a function freeing it all.
func cStrings(strs []string) (unsafe.Pointer, func(), error) {
	size := (len(strs) + 1) * 8
	for _, s := range strs {
		size += len(s) + 1
	}
	buf, base, err := cBytes(size)
	if err != nil {
		return nil, nil, err
	}
	ptrs := unsafe.Slice((*unsafe.Pointer)(base), len(strs)+1)
	off := (len(strs) + 1) * 8
	for i, s := range strs {
		copy(buf[off:], s)
		buf[off+len(s)] = 0
		ptrs[i] = unsafe.Pointer(&buf[off])
		off += len(s) + 1
	}
	ptrs[len(strs)] = nil
	return base, func() { cFree(base) }, nil
}

// goString reads a NUL-terminated C string.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	var n int
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
