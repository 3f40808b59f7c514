package optim

import (
	"fmt"
	"sort"
	"strings"
)

// Optimizer is what the trainer drives: one Step per iteration after the
// backward pass, and State / LoadState around checkpoints.
type Optimizer interface {
	// Step updates every parameter that has a gradient, with learning rate
	// lr for all groups and weight decay wd for group 0 (wd·WDFactor for
	// the others), as the reference trainer sets them before each step. It
	// returns an error, and changes nothing, when a parameter's data or
	// gradient no longer has the parameter's size.
	Step(lr, wd float64) error
	// State returns a deep copy of the optimiser's per-parameter state.
	State() State
	// LoadState replaces the optimiser's state with a copy of s, for an
	// exact resume. Parameters s does not mention start without state, as
	// in a fresh optimiser.
	LoadState(s State) error
}

// Optimizer names accepted by New (SOLVER.OPTIMIZING_METHOD).
const (
	MethodLARS  = "LARS"
	MethodSGD   = "SGD"
	MethodAdamW = "AdamW"
)

// New builds the optimiser the reference trainer builds for
// SOLVER.OPTIMIZING_METHOD: LARS with eta 0.001 and the given momentum
// (SOLVER.MOMENTUM), SGD with that momentum, or AdamW with torch's defaults
// (momentum is not used).
func New(method string, groups []Group, momentum float64) (Optimizer, error) {
	switch method {
	case MethodLARS:
		return NewLARS(groups, LARSConfig{Momentum: momentum, Eta: DefaultLARSEta})
	case MethodSGD:
		return NewSGD(groups, momentum)
	case MethodAdamW:
		return NewAdamW(groups, DefaultAdamWConfig())
	}
	return nil, fmt.Errorf("optimizer %q (want %s, %s or %s): %w", method, MethodLARS, MethodSGD, MethodAdamW, ErrUnknownOptimizer)
}

// State is an optimiser's resumable state, in the shape of torch's
// optimizer.state: per parameter, named float32 buffers and (for AdamW) a
// step count. A parameter that has never had a gradient has no entry.
//
// Buffer names are torch's: LARS "mu", SGD "momentum_buffer", AdamW
// "exp_avg" and "exp_avg_sq" (its per-parameter "step" is in Steps). The
// flat map suits a safetensors checkpoint: one tensor per key, shaped like
// the parameter.
type State struct {
	// Buffers maps StateKey(parameter name, buffer name) to the buffer's
	// values (len = the parameter's size).
	Buffers map[string][]float32
	// Steps maps a parameter name to the number of updates it has had
	// (AdamW's bias correction depends on it); nil for LARS and SGD.
	Steps map[string]int64
}

// StateKey is the State.Buffers key of one buffer of one parameter:
// "<param>/<buffer>". Buffer names never contain '/', so the key splits
// unambiguously at its last '/' (see SplitStateKey).
func StateKey(param, buffer string) string {
	return param + "/" + buffer
}

// SplitStateKey reverses StateKey; ok is false for a key without '/'.
func SplitStateKey(key string) (param, buffer string, ok bool) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// bufferState holds per-parameter buffers, indexed like paramSet.entries;
// a nil slice is a parameter without state.
type bufferState struct {
	names []string      // buffer names, e.g. {"exp_avg", "exp_avg_sq"}
	bufs  [][][]float32 // bufs[b][entry]
}

func newBufferState(n int, names ...string) bufferState {
	s := bufferState{names: names, bufs: make([][][]float32, len(names))}
	for b := range s.bufs {
		s.bufs[b] = make([][]float32, n)
	}
	return s
}

// has reports whether entry i has state.
func (s *bufferState) has(i int) bool { return s.bufs[0][i] != nil }

// ensure allocates zeroed buffers for entry i on its first update.
func (s *bufferState) ensure(i, size int) {
	if s.bufs[0][i] != nil {
		return
	}
	for b := range s.bufs {
		s.bufs[b][i] = make([]float32, size)
	}
}

// export copies the buffers of every entry with state into st.
func (s *bufferState) export(set *paramSet, st *State) {
	st.Buffers = make(map[string][]float32)
	for i, e := range set.entries {
		if !s.has(i) {
			continue
		}
		for b, name := range s.names {
			st.Buffers[StateKey(e.p.Name, name)] = append([]float32(nil), s.bufs[b][i]...)
		}
	}
}

// load validates st.Buffers against the parameters and, only when all of it
// fits, replaces the buffers with copies. It returns which entries got
// state.
func (s *bufferState) load(set *paramSet, st State) ([]bool, error) {
	present := make([]bool, len(set.entries))
	seen := make(map[string]int) // parameter name → buffers found
	keys := make([]string, 0, len(st.Buffers))
	for k := range st.Buffers {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error messages
	for _, k := range keys {
		param, buf, ok := SplitStateKey(k)
		if !ok {
			return nil, fmt.Errorf("state key %q is not <param>/<buffer>: %w", k, ErrState)
		}
		i, known := set.index[param]
		if !known {
			return nil, fmt.Errorf("state key %q: no parameter %q: %w", k, param, ErrState)
		}
		if !contains(s.names, buf) {
			return nil, fmt.Errorf("state key %q: buffer %q is not one of %v: %w", k, buf, s.names, ErrState)
		}
		if got, want := len(st.Buffers[k]), set.entries[i].size; got != want {
			return nil, fmt.Errorf("state key %q: %d values for parameter of size %d: %w", k, got, want, ErrState)
		}
		seen[param]++
		present[i] = true
	}
	for param, n := range seen {
		if n != len(s.names) {
			return nil, fmt.Errorf("state of parameter %q has %d of the buffers %v: %w", param, n, s.names, ErrState)
		}
	}
	for i, e := range set.entries {
		for b, name := range s.names {
			if !present[i] {
				s.bufs[b][i] = nil
				continue
			}
			src := st.Buffers[StateKey(e.p.Name, name)]
			if s.bufs[b][i] == nil {
				s.bufs[b][i] = make([]float32, e.size)
			}
			copy(s.bufs[b][i], src)
		}
	}
	return present, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
