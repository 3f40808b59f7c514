package trainer

import (
	"context"
	"errors"
	"io"

	"github.com/sslight-go/sslight/configs"
)

// Options configure one pre-training run.
type Options struct {
	// Config is the SSLight-schema config (the one prepare used, or one
	// whose augmentation settings agree with it).
	Config *configs.Config
	// Shards are prepare runs' output roots (each holding manifest.json),
	// trained on together: training epoch e reads prepared epoch e mod P
	// of every root (P being that root's number of prepared epochs).
	Shards []string
	// Exclude lists, per shards root, sample keys to skip there: samples
	// superseded by a newer version in a later root (sslight retrain).
	Exclude map[string]map[string]bool
	// InitFrom is a checkpoint folder of the same SSL method whose
	// networks, optimiser state and loss state (DINO's center, SwAV's and
	// MoCo's queues) start this run, with a fresh schedule (sslight
	// retrain continues pre-training this way).
	InitFrom string
	// ConfigSource names where Config came from (a preset name or a file),
	// recorded in every checkpoint's meta.json for the reports.
	ConfigSource string
	// TensorBoard, when set, is a folder (local or gs://) that receives a
	// TensorBoard events file mirroring metrics.jsonl: train/* scalars per
	// logged step, epoch/loss, monitor/* (TENSORBOARD_PATH when empty and
	// that key is not the reference's default, /tensorboard).
	TensorBoard string
	// Out receives checkpoints/, metrics.jsonl and summary.json.
	Out string
	// Epochs overrides SOLVER.TOTAL_EPOCHS and BatchSize TRAIN.BATCH_SIZE
	// (0 keeps the config's).
	Epochs, BatchSize int
	// Resume continues from the newest complete checkpoint under Out.
	Resume bool
	// AllowConfigMismatch trains on shards prepared with other
	// augmentation settings than Config's.
	AllowConfigMismatch bool
	// ShuffleBuffer is the sample shuffle buffer (default 4096).
	ShuffleBuffer int
	// Workers is the number of goroutines that render the views of image
	// shards (prepare --emit images) and normalise batches (0:
	// GOMAXPROCS); shards of views alone are read by one goroutine.
	Workers int
	// MaxSteps stops this call after so many steps, with a checkpoint
	// (0: no limit). For trials and tests.
	MaxSteps int
	// SkipBadShards verifies every shard before an epoch reads it (size
	// and CRC32C against the manifest, sample metadata and view shapes;
	// each shard is read twice) and goes on without the bad ones, listing
	// them in the Summary; an epoch with skipped shards runs fewer
	// iterations. Without it the first bad shard stops the run with an
	// error naming it.
	SkipBadShards bool
	// Monitor, when set, scores every epoch checkpoint (every
	// TRAIN.CHECKPOINT_PERIOD epochs and the last; the command wires the
	// online kNN accuracy on a labelled held-out source here). Its
	// results go to metrics.jsonl and monitor.png.
	Monitor func(ctx context.Context, checkpoint string, epoch int) (map[string]float64, error)
	// Progress receives a live progress line and notes (skipped shards,
	// short epochs); nil for none. Only the goroutine that calls Run
	// writes it, so it need not be safe for concurrent use.
	Progress io.Writer
}

// Summary describes a finished (or stopped) call. Run writes it to
// summary.json under Out when the run trains its last epoch; --resume of a
// run that already did returns what that file says.
type Summary struct {
	Out string `json:"out"`
	// Checkpoint is the newest checkpoint folder the run has.
	Checkpoint     string `json:"checkpoint"`
	Method         string `json:"method"`
	Arch           string `json:"arch"`
	Epochs         int    `json:"epochs"`
	PreparedEpochs int    `json:"prepared_epochs"`
	// ItersPerEpoch is the planned iterations per epoch (a training
	// epoch's samples over the batch size), the schedules' unit. An epoch
	// that skipped shards runs fewer: StepsPerEpoch says what ran.
	ItersPerEpoch int `json:"iters_per_epoch"`
	// StepsPerEpoch are the iterations each finished epoch of the run
	// ran (absent when the run resumed a checkpoint too old to record
	// them).
	StepsPerEpoch []int `json:"steps_per_epoch,omitempty"`
	BatchSize     int   `json:"batch_size"`
	// StartStep is the global step the call started at, and Steps how
	// many steps it ran.
	StartStep    int     `json:"start_step"`
	Steps        int     `json:"steps"`
	Done         bool    `json:"done"`
	FinalLoss    float64 `json:"final_loss"`
	ImagesPerSec float64 `json:"images_per_sec"`
	WallSeconds  float64 `json:"wall_seconds"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	ConfigHash   string  `json:"config_hash"`
	// SkippedShards lists the shards --skip-bad-shards left out, per
	// epoch, with the reason.
	SkippedShards []SkippedShard `json:"skipped_shards,omitempty"`
}

// SummaryFile is the Summary under Out of a run that trained its last
// epoch.
const SummaryFile = "summary.json"

// SkippedShard is one bad shard a training epoch went on without.
type SkippedShard struct {
	Epoch int    `json:"epoch"`
	Shard string `json:"shard"`
	Error string `json:"error"`
}

// MetricsFile is the per-step log under Out.
const MetricsFile = "metrics.jsonl"

// MetricsRecord is one line of metrics.jsonl: a logged step, (Kind
// "epoch") the end of an epoch with its mean loss, or (Kind "monitor") the
// Monitor's results on the checkpoint of an epoch.
type MetricsRecord struct {
	Kind         string  `json:"kind"` // "step" or "epoch"
	Step         int     `json:"step"`
	Epoch        int     `json:"epoch"`
	Loss         float64 `json:"loss"`
	LossGlobal   float64 `json:"loss_global,omitempty"`
	LossLocal    float64 `json:"loss_local,omitempty"`
	LR           float64 `json:"lr"`
	WD           float64 `json:"wd"`
	Momentum     float64 `json:"momentum"`
	TeacherTemp  float64 `json:"teacher_temp"`
	ImagesPerSec float64 `json:"images_per_sec"`
	Elapsed      float64 `json:"elapsed_s"`
	// Time is when the record was made, unix seconds (TensorBoard's wall
	// time).
	Time float64 `json:"time,omitempty"`
	// SupLoss and SupAccuracy are the joint linear probe's cross-entropy
	// and top-1 accuracy (a fraction) on the training batch(es), with
	// TRAIN.JOINT_LINEAR_PROBE (the reference's sup_loss and sup_accu).
	SupLoss     *float64 `json:"sup_loss,omitempty"`
	SupAccuracy *float64 `json:"sup_accu,omitempty"`
	// Metrics holds a monitor's results (Kind "monitor"), e.g. knn_top1.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// DataWait (Kind "epoch") is the fraction of the epoch's wall time the
	// step waited for the loader: above a few percent the loader, not the
	// model, sets the pace. LoaderWait is the fraction the loader waited
	// with a batch ready for the step to take it.
	DataWait   *float64 `json:"data_wait,omitempty"`
	LoaderWait *float64 `json:"loader_wait,omitempty"`
}

// ErrStopped is returned (wrapped) when a run stops early on a signal or a
// cancelled context after writing its checkpoint.
var ErrStopped = errors.New("training stopped before the last epoch")

// ErrNonFiniteLoss is returned (wrapped) when a step's loss is NaN or
// infinite; the run has checkpointed the state before that step.
var ErrNonFiniteLoss = errors.New("training diverged")

// Run pre-trains the configured backbone on the shards and returns what it
// did. Cancelling ctx (SIGINT/SIGTERM in the command) writes a checkpoint
// at the current step and returns an error wrapping ErrStopped.
func Run(ctx context.Context, o Options) (*Summary, error) {
	r, err := newRun(ctx, o)
	if err != nil {
		return nil, err
	}
	if r.finished != nil { // --resume of a run that already trained its last epoch
		return r.finished, nil
	}
	defer r.model.close()
	rec := newRecorder(r)
	for r.meta.Epoch < r.epochs {
		stop, err := r.trainEpoch(ctx, rec)
		if stop != "" {
			err = r.stop(ctx, rec, stop, err)
			return rec.summary(), err
		}
		if err != nil {
			return nil, err
		}
		if err := rec.endEpoch(ctx); err != nil {
			return nil, err
		}
	}
	return rec.finish(ctx)
}
