package storage

import "sync/atomic"

// writeHook is the hook SetWriteHook installs (nil: none).
var writeHook atomic.Pointer[func(uri string) error]

// SetWriteHook installs hook, which this package calls with the URI of
// every change it is about to make visible — a Writer's Commit (so
// WriteFile's too), the destination of a Rename, the file a Remove
// deletes — before making it. An error from hook fails that change as a
// storage error would, with nothing changed: the Writer is aborted, the
// rename or remove is not done. nil removes the hook. CleanTemporaries'
// removals of dead writers' leftovers are not changes and do not call it.
//
// It is a test seam: crash-safety tests install a hook that fails every
// change from the Nth on, which stops a run at its Nth commit point the
// way a kill would, without sleeping or a child process. hook must be safe
// for concurrent use (Beam workers write in parallel). When no hook is
// set a change costs one atomic load.
func SetWriteHook(hook func(uri string) error) {
	if hook == nil {
		writeHook.Store(nil)
		return
	}
	writeHook.Store(&hook)
}

// beforeChange runs the write hook, if any, for a change to uri.
func beforeChange(uri string) error {
	if h := writeHook.Load(); h != nil {
		return (*h)(uri)
	}
	return nil
}
