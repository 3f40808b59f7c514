package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/pipelines/embed"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

func init() {
	register(&command{name: "embed", summary: "Beam pipeline: embed unlabelled images (local or gs://) with a checkpoint; .npy for numpy, nearest neighbours", run: runEmbed})
}

const embedDescription = `Embed images that need no labels with a trained checkpoint, on Beam.

Lists --source (a local folder or gs://bucket/prefix; --format folder, the
default, takes every file under it, at any depth, unlabelled), turns every
image into sslight's evaluation view (Resize S·256/224, CenterCrop S,
Normalize with the checkpoint's DATA.MEAN / DATA.STD, S its GLOBAL_CROP_SIZE)
and into the backbone's embedding (--weights student, the default, or teacher:
DINO's EMA teacher, MoCo's key encoder). Files that are not images, truncated
or empty ones are dead letters with a reason, never a failure.

Writes under --out:
  embeddings.npy     float32 [N, D]; row i belongs to line i of keys.txt
  keys.txt           the N image keys (paths relative to --source), sorted
  index.jsonl        per row {"row", "key", "uri"} (+ "label"/"class" for labelled layouts)
  neighbours.jsonl   with --nearest K: per row {"key", "neighbours": [{"key", "similarity"}…]},
                     the K most cosine-similar other images, most similar first
  dead-letter.jsonl  every file without an embedding, with the stage and reason
  features/, features.json, listing.jsonl, summary.json
                     the safetensors feature parts, their index, the listing, the counts

In Python:
  import numpy as np
  X = np.load("out/embeddings.npy"); keys = open("out/keys.txt").read().splitlines()

--nearest is exact: every pair's cosine similarity by blocked matrix products,
N²·D multiply-adds on the CPU, N·K memory beyond the embeddings. Measured on two
shared cores: 10,000 ResNet-18 embeddings (D = 512) in 12–29 s depending on the
load; the cost grows with N², so 100,000 take 100 times as long (20–50 minutes
there, less on more cores: the search uses every GOMAXPROCS).

embed runs sslight checkpoints only: there is no ONNX runtime in Go here, so a
model exported with sslight export cannot be embedded with (--model is
refused); pass the checkpoint it came from. To score labelled sets with kNN,
linear probes and fine-tuning, use sslight eval.

Examples:
  sslight embed --checkpoint runs/x/dino_fmnist_sslight/pretrain --source ~/photos --out runs/x/emb --nearest 5
  sslight embed --checkpoint gs://b/run/pretrain --weights teacher --source gs://b/images --out gs://b/emb`

func runEmbed(ctx context.Context, args []string) error {
	fs := cli.NewPipelineFlagSet("embed", "--checkpoint DIR --source URI --out URI [--format folder|imagenet|coco|idx] [--weights student|teacher] [--nearest K]", embedDescription)
	var o embed.Options
	fs.StringVar(&o.Checkpoint, "checkpoint", "", "checkpoint folder, or a pretrain --out (its newest checkpoint); local or gs://")
	model := fs.String("model", "", "not supported: embed runs checkpoints (there is no ONNX runtime in Go here); pass --checkpoint")
	fs.StringVar(&o.Source, "source", "", "image root: a local folder or gs://bucket/prefix")
	fs.StringVar(&o.Out, "out", "", "output folder: local or gs://bucket/prefix")
	fs.StringVar(&o.Format, "format", "folder", "source layout: folder (every file, unlabelled), imagenet, coco or idx (labels kept in index.jsonl)")
	fs.StringVar(&o.Split, "split", "", "split of a coco (default train2017) or idx (default train) source")
	fs.IntVar(&o.Limit, "limit", 0, "embed only the first N listed images, by key (0 = all)")
	weights := fs.String("weights", string(checkpoint.Student), "student (the trained network) or teacher (DINO's EMA teacher, MoCo's key encoder)")
	fs.IntVar(&o.Nearest, "nearest", 0, "write each image's K nearest other images by cosine similarity to neighbours.jsonl (0 = none)")
	fs.IntVar(&o.Workers, "workers", 0, "decode goroutines per feature part (0 = 2×GOMAXPROCS)")
	fs.IntVar(&o.BatchSize, "batch-size", 0, "images per forward pass (0: 16 at 224 px, more for smaller views)")
	quiet := fs.Bool("quiet", false, "no progress display")
	fs.StringVar(&o.Device, "device", "", deviceUsage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model != "" {
		return fmt.Errorf("--model %s: embed runs sslight checkpoints, not exported models (there is no ONNX runtime in Go here); pass --checkpoint with the checkpoint it was exported from", *model)
	}
	if err := fs.Require("checkpoint", "source", "out"); err != nil {
		return err
	}
	if err := fs.AtLeast(0, "limit", "nearest", "workers", "batch-size"); err != nil {
		return err
	}
	var err error
	if o.Device, err = evaluate.PlaceModels(deviceOf(o.Device, ""), func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }); err != nil {
		return err
	}
	w, err := checkpoint.ParseWeights(*weights)
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	o.Weights = w
	if !*quiet {
		o.Progress = os.Stderr
	}
	sum, err := embed.Run(ctx, o)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	fmt.Println(string(b))
	if sum.DeadLetters > 0 {
		return reportDeadLetters(ctx, sum)
	}
	return nil
}

// reportDeadLetters lists the first dead letters on stderr, so the
// images without an embedding are seen, not only counted.
func reportDeadLetters(ctx context.Context, sum *embed.Summary) error {
	const show = 10
	dead, err := deadletter.Read(ctx, sum.DeadLetterFile)
	if err != nil {
		return fmt.Errorf("the embeddings are written, but the dead letters do not read: %w", err)
	}
	fmt.Fprintf(os.Stderr, "sslight embed: %d of %d inputs gave no embedding (all in %s):\n", sum.DeadLetters, sum.Inputs, sum.DeadLetterFile)
	for i, d := range dead {
		if i == show {
			fmt.Fprintf(os.Stderr, "  … %d more\n", len(dead)-show)
			break
		}
		fmt.Fprintf(os.Stderr, "  %s: %s: %s\n", d.URI, d.Stage, d.Error)
	}
	return nil
}
