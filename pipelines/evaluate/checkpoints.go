package evaluate

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/eval"
)

// Checkpoints are checkpoints to score and report: `sslight eval`'s job.
type Checkpoints struct {
	// Dirs are checkpoint folders or training output folders (their newest
	// checkpoint).
	Dirs []string
	// Weights picks each checkpoint's network: checkpoint.Student ("" too)
	// or checkpoint.Teacher (Model.WithWeights).
	Weights checkpoint.Weights
	// RawPixels and RandomInit add the reference rows, with the first
	// checkpoint's training config (the random-init backbone seeded with
	// Spec.Seed).
	RawPixels, RandomInit bool
	Spec                  Spec
	// Out receives the features, detections and the report files.
	Out string
}

// Report scores the reference rows, then the checkpoints in order, and
// writes the report (WriteReport) under Out.
func (c Checkpoints) Report(ctx context.Context) (*report.Report, error) {
	var models, refs []Model
	for _, d := range c.Dirs {
		m, err := CheckpointModel(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("--checkpoint %s: %w", d, err)
		}
		models = append(models, m.WithWeights(c.Weights))
	}
	if len(models) == 0 {
		return nil, errors.New("no checkpoint to evaluate")
	}
	first := models[0].Config
	if c.RawPixels {
		refs = append(refs, RawPixelsModel(first))
	}
	if c.RandomInit {
		rc := first.Clone()
		if err := rc.Set("SEED", fmt.Sprint(c.Spec.Seed)); err != nil {
			return nil, err
		}
		refs = append(refs, RandomInitModel(rc))
	}
	rep, err := Report(ctx, append(refs, models...), c.Spec, c.Out, uuid.Must(uuid.NewV7()).String(), Notes(c.Spec))
	if err != nil {
		return nil, err
	}
	if err := WriteReport(ctx, c.Out, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// SetLinear picks the linear protocol: LinearFast with
// eval.DefaultLinearConfig, or LinearReference with the reference's
// configuration seeded with s.Seed; epochs > 0 overrides its epochs.
func (s *Spec) SetLinear(mode string, epochs int) error {
	switch mode {
	case LinearFast:
		s.LinearMode, s.Linear = LinearFast, eval.DefaultLinearConfig()
		if epochs > 0 {
			s.Linear.Epochs = epochs
		}
	case LinearReference:
		s.LinearMode, s.RefLinear = LinearReference, eval.DefaultReferenceLinearConfig()
		s.RefLinear.Seed = s.Seed
		if epochs > 0 {
			s.RefLinear.Epochs = epochs
		}
	default:
		return fmt.Errorf("--linear-mode %q: want %s or %s", mode, LinearFast, LinearReference)
	}
	return nil
}
