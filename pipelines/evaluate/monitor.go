package evaluate

import (
	"context"
	"fmt"
	"io"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/storage"
)

// Monitor is the online kNN monitor of pre-training (trainer.Options'
// Monitor is its Score): after every checkpointed epoch it scores the
// checkpoint's student with kNN on Spec's sources and, with Probe, the
// joint linear probe on the same validation features, as the reference's
// knn_validate does.
type Monitor struct {
	// Spec names the sources (Train, Val, Format, splits); its Protocols
	// are ignored (kNN only) and Seed is Config's SEED.
	Spec Spec
	// Config is the training config (its views).
	Config *configs.Config
	// Out holds one Models output per epoch, Out/monitor/epoch-NNNN.
	Out string
	// Probe, when set, scores the checkpoint's joint linear probe on
	// features x ([n, dim]) with labels, in percent (trainer.ProbeAccuracy).
	Probe func(ctx context.Context, ckpt string, dim int, x []float32, labels []int) (float64, error)
	// Log, when set, receives one line per epoch.
	Log io.Writer
}

// Score scores the checkpoint written after epoch (0-based): knn_top1 and,
// with Probe, probe_top1.
func (mon Monitor) Score(ctx context.Context, ckpt string, epoch int) (map[string]float64, error) {
	spec := mon.Spec
	spec.Protocols, spec.Seed = []string{ProtocolKNN}, uint64(mon.Config.Seed)
	out := storage.Join(mon.Out, "monitor", fmt.Sprintf("epoch-%04d", epoch))
	rows, err := Models(ctx, []Model{{Name: "student", Checkpoint: ckpt, Config: mon.Config}}, spec, out)
	if err != nil {
		return nil, err
	}
	res := map[string]float64{"knn_top1": rows[0].Metrics["knn_top1"]}
	line := fmt.Sprintf("online kNN top-1 %.2f%%", res["knn_top1"])
	if mon.Probe != nil {
		dim, x, labels, _, err := LoadFeatures(ctx, storage.Join(FeaturesDir(out, "student"), "val"))
		if err != nil {
			return nil, err
		}
		if res["probe_top1"], err = mon.Probe(ctx, ckpt, dim, x, labels); err != nil {
			return nil, err
		}
		line += fmt.Sprintf(", joint linear probe top-1 %.2f%%", res["probe_top1"])
	}
	logf(mon.Log, "\npretrain: epoch %d: %s", epoch+1, line)
	return res, nil
}
