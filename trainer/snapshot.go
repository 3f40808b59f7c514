package trainer

import (
	"fmt"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/nn"
)

// stepSnapshot holds what a step changes before its loss is known: the
// BatchNorm buffers every network's train-mode forward updates, the
// parameters the method updates before its forward (trainState.preForward:
// MoCo's key encoder, SwAV's prototypes) and the loss state the forward
// pass moves (DINO's center, the SwAV and MoCo queues). A step whose loss
// is not finite is undone with it, so the checkpoint written then is
// exactly the state before that step (the trained parameters and the
// optimiser state are untouched until the optimiser step).
type stepSnapshot struct {
	entries  []nn.Entry // resolved once
	resolved bool
	f32      [][]float32
	cnt      []int64
	loss     *safetensors.File
}

// volatile returns the entries a step of m changes before its loss; they
// alias the networks' storage, so the list holds for the whole run.
func (s *stepSnapshot) volatile(m method) []nn.Entry {
	if !s.resolved {
		st := m.state()
		for _, e := range st.entries {
			if e.Param == nil {
				s.entries = append(s.entries, e)
			}
		}
		s.entries = append(s.entries, st.preForward...)
		s.resolved = true
	}
	return s.entries
}

// take records m's state; the buffers are reused from step to step.
func (s *stepSnapshot) take(m method) error {
	i, j := 0, 0
	for _, e := range s.volatile(m) {
		switch {
		case e.Count != nil:
			if j == len(s.cnt) {
				s.cnt = append(s.cnt, 0)
			}
			s.cnt[j] = *e.Count
			j++
		default:
			if i == len(s.f32) {
				s.f32 = append(s.f32, make([]float32, len(e.F32)))
			}
			s.f32[i] = append(s.f32[i][:0], e.F32...)
			i++
		}
	}
	s.loss = safetensors.NewFile() // the methods' State() hands out copies
	if err := m.saveLossState(s.loss); err != nil {
		return fmt.Errorf("snapshot of the loss state: %w", err)
	}
	return nil
}

// restore puts the recorded state back into m.
func (s *stepSnapshot) restore(m method) error {
	i, j := 0, 0
	for _, e := range s.volatile(m) {
		switch {
		case e.Count != nil:
			*e.Count = s.cnt[j]
			j++
		default:
			copy(e.F32, s.f32[i])
			i++
		}
	}
	if err := m.loadLossState(s.loss); err != nil {
		return fmt.Errorf("restoring the loss state: %w", err)
	}
	return nil
}
