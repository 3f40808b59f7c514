package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/trainer"
)

func init() {
	register(&command{name: "pretrain", summary: "self-supervised pre-training (DINO, SwAV or MoCo-v2; baseline or SSLight settings) on prepared shards", run: runPretrain})
}

const pretrainDescription = `Pre-train a backbone with self-supervised learning on the shards that
sslight prepare wrote.

The config is the SSLight-schema YAML the prepare step used (or a preset): it
names the backbone (MODEL), the method and its head (SSL_METHOD with its
sections), the views (MULTI_VIEWS_TRANSFORMS: the shards must hold those views;
the run refuses shards prepared with other augmentation settings unless
--allow-config-mismatch) and the optimisation (SOLVER: LARS/SGD/AdamW, cosine
learning rate with warm-up scaled by batch/256, weight-decay schedule, CLIP_GRAD).

SSL_METHOD, each with SSLight's re-balanced multi-crop loss (LAMBDAS):
  DINO  DINO, DINOHead: EMA teacher on the global views (MODEL.MODEL_MOMENTUM
        schedule), centering, teacher-temperature warm-up, FREEZE_LAST_LAYER
  SWAV  SWAV: projection + prototypes (normalised every step, frozen for
        FREEZE_PROTOTYPES_EPOCHS), Sinkhorn codes for CROPS_FOR_ASSIGN, the
        queue of QUEUE_LENGTH from EPOCH_QUEUE_STARTS
  MOCO  MOCO: key encoder = EMA (MOMENTUM) of the query encoder on global
        view 1; queries from global view 2 and the local views (GLOBAL_ONLY:
        view 2 alone); a queue of QUEUE_LENGTH keys (a multiple of the batch)

TRAIN.JOINT_LINEAR_PROBE (--set TRAIN.JOINT_LINEAR_PROBE=true) trains the
reference's joint linear probe beside the SSL loss: a linear classifier of
TRAIN.NUM_CLASSES on the detached student embedding of the first global view,
its cross-entropy added to the loss and stepped by the same optimiser. The
shards must carry labels (prepare from an imagenet or idx layout);
metrics.jsonl gets sup_loss and sup_accu, the checkpoint classifier.weight/bias,
and the online monitor scores the probe on --knn-val (probe_top1).

Training runs SOLVER.TOTAL_EPOCHS epochs of floor(samples/batch) iterations.
When it runs more epochs than were prepared, epoch e reuses prepared epoch
e mod P (in a new order) and says so.

Writes under --out:
  checkpoints/step-NNNNNNNN/
    checkpoint.safetensors  every network (student., DINO's teacher., MoCo's key.), optimizer
                            and loss state (DINO center, swav.queue, moco.queue): what resume needs
    backbone.safetensors    student backbone, torchvision / timm names (load strict=True)
    meta.json               epoch, step, config hash, ...
  metrics.jsonl             loss, lr, wd, EMA momentum, DINO's teacher temperature, images/s
                            (sup_loss, sup_accu)
  summary.json              the run at a glance

Shards of images (prepare --emit images) have their views rendered here, each
epoch afresh, by --workers goroutines with the same augment code and random
keys prepare uses: the views prepare --emit views would have written for that
epoch. Every epoch record in metrics.jsonl says what fraction of the epoch the
step waited for data (data_wait) and the loader for the step (loader_wait); an
epoch whose step waited more than 10% prints a note: the loader, not the
model, was the bottleneck.

A checkpoint is written every TRAIN.CHECKPOINT_PERIOD epochs, after the last
epoch, and on SIGINT/SIGTERM (Ctrl-C). --resume continues from the newest one
and ends with exactly the weights an uninterrupted run would have. A NaN or
infinite loss stops the run with its step and learning rate: that step is
undone (BatchNorm statistics, DINO center, queues) and the state before it
checkpointed (meta.json reason "non-finite-loss"), to continue from with
--init-from and a lower SOLVER.BASE_LR.

Examples:
  sslight prepare  --config dino_fmnist_sslight --format idx --source /usr/share/datasets/fashion-mnist \
                   --out runs/fmnist/shards --epochs 5
  sslight pretrain --config dino_fmnist_sslight --shards runs/fmnist/shards --out runs/fmnist/dino
  sslight pretrain --config dino_fmnist_sslight --shards runs/fmnist/shards --out runs/fmnist/dino --resume
  sslight pretrain --config moco_cnn_sslight --shards /data/moco-shards --out runs/moco
  sslight pretrain --config swav_cnn_sslight --shards /data/swav-shards --out runs/swav --set SWAV.EPOCH_QUEUE_STARTS=5`

func runPretrain(ctx context.Context, args []string) error {
	fs := cli.NewFlagSet("pretrain", "--config FILE --shards URI --out URI [flags]", pretrainDescription)
	cfgPath := fs.String("config", "", "SSLight-schema YAML file, or a preset name ("+strings.Join(configs.PresetNames(), ", ")+")")
	shards := fs.String("shards", "", "the prepare run's --out (holding manifest.json): a local folder or gs://bucket/prefix; several, comma-separated, train together")
	initFrom := fs.String("init-from", "", "start from this checkpoint folder (same SSL_METHOD): weights, optimiser state and loss state (DINO center, SwAV/MoCo queue), with a fresh schedule")
	out := fs.String("out", "", "where checkpoints and metrics go: a local folder or gs://bucket/prefix")
	epochs := fs.Int("epochs", 0, "training epochs (default SOLVER.TOTAL_EPOCHS)")
	batch := fs.Int("batch-size", 0, "batch size (default TRAIN.BATCH_SIZE)")
	resume := fs.Bool("resume", false, "continue from the newest checkpoint under --out")
	allow := fs.Bool("allow-config-mismatch", false, "train on shards prepared with other augmentation settings")
	maxSteps := fs.Int("max-steps", 0, "stop after this many steps with a checkpoint (0 = run to the end); for trials")
	buffer := fs.Int("shuffle-buffer", 4096, "samples held in the shuffle buffer")
	workers := fs.Int("workers", 0, "goroutines rendering the views of image shards (prepare --emit images) and normalising batches (0 = GOMAXPROCS)")
	skipBad := fs.Bool("skip-bad-shards", false, "verify each shard before an epoch uses it (CRC32C, sizes, view shapes; reads it twice) and go on without bad ones, listed in summary.json, instead of stopping")
	var sets cli.Repeated
	fs.Var(&sets, "set", "override a config key, KEY=VALUE (repeatable), e.g. --set SOLVER.BASE_LR=0.3")
	knnTrain := fs.String("knn-train", "", "online kNN monitor: labelled source whose features are the neighbours (with --knn-val)")
	knnVal := fs.String("knn-val", "", "online kNN monitor: labelled held-out source scored after every checkpointed epoch (TRAIN.CHECKPOINT_PERIOD)")
	knnFormat := fs.String("knn-format", "", "layout of the kNN sources (default DATA.FORMAT)")
	knnTrainSplit := fs.String("knn-train-split", "", "split of --knn-train (idx: train)")
	knnValSplit := fs.String("knn-val-split", "", "split of --knn-val (idx: t10k)")
	tensorboard := fs.String("tensorboard", "", "also write a TensorBoard events file of metrics.jsonl's values to this folder (local or gs://; default TENSORBOARD_PATH unless it is the reference's /tensorboard): tensorboard --logdir FOLDER")
	quiet := fs.Bool("quiet", false, "no progress display")
	device := addDeviceFlag(fs)
	storageOpts := addStorageFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := storageOpts.apply(); err != nil {
		return err
	}
	if err := fs.Require("config", "shards", "out"); err != nil {
		return err
	}
	if err := fs.AtLeast(1, "epochs", "batch-size", "shuffle-buffer"); err != nil {
		return err
	}
	if err := fs.AtLeast(0, "max-steps"); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, sets, "TRAIN.DEVICE", *device)
	if err != nil {
		return err
	}
	if err := checkTrainingDevice(deviceOf("", cfg.Train.Device)); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := trainer.Options{Config: cfg, ConfigSource: *cfgPath, Shards: strings.Split(*shards, ","), Out: *out, Epochs: *epochs, BatchSize: *batch, Resume: *resume,
		AllowConfigMismatch: *allow, MaxSteps: *maxSteps, ShuffleBuffer: *buffer, InitFrom: *initFrom, SkipBadShards: *skipBad,
		Workers: *workers, TensorBoard: *tensorboard}
	if !*quiet {
		o.Progress = os.Stderr
	}
	if (*knnTrain == "") != (*knnVal == "") {
		return errors.New("--knn-train and --knn-val go together")
	}
	if *knnTrain != "" {
		mon := evaluate.Monitor{Spec: evaluate.Spec{Train: *knnTrain, Val: *knnVal, Format: *knnFormat, TrainSplit: *knnTrainSplit, ValSplit: *knnValSplit},
			Config: cfg, Out: *out, Log: os.Stderr}
		if cfg.Train.JointLinearProbe {
			mon.Probe = trainer.ProbeAccuracy
		}
		o.Monitor = mon.Score
	}
	sum, err := trainer.Run(ctx, o)
	if sum != nil {
		b, _ := json.MarshalIndent(sum, "", "  ")
		fmt.Println(string(b))
	}
	return err
}
