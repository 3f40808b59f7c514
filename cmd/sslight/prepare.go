package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/pipelines/prepare"
)

func init() {
	register(&command{name: "prepare", summary: "Beam pipeline: list a bucket or folder, decode, multi-crop, write training shards", run: runPrepare})
}

const prepareDescription = `Prepare multi-crop training shards with a Beam pipeline.

Lists the source (a local folder or gs://bucket/prefix), decodes every image
by its content, draws the configured global and local views of every image for
every epoch (MULTI_VIEWS_TRANSFORMS of the config: 2 global + L local crops)
and writes them as WebDataset-style .tar shards under --out:

  <out>/epoch-0000/<uuid>.tar   per sample <key>.json, <key>.global.npy uint8 [2,G,G,3],
                                <key>.local.npy uint8 [L,l,l,3]
  <out>/manifest.json           shards (samples, bytes, CRC32C), source listing, counts
  <out>/dead-letter.jsonl       every input that could not be used, with the reason
  <out>/listing.jsonl           the listed inputs, one JSON object per line
  <out>/summary.json            inputs, samples, dead letters, bytes, wall time, images/s

With --emit images the shards hold each decoded image once instead, shrunk to
--image-size (<key>.image.npy uint8 [H,W,3], one epoch-0000 of shards), and
sslight pretrain renders every epoch's views from them on its own cores.

Every random draw is a function of (seed, image key, epoch, view), so the same
inputs and config give byte-identical shards on any runner and worker count,
and the views pretrain renders from image shards are byte for byte those
--emit views writes with the same --image-size.
Nothing is lost: per epoch, inputs = samples written + dead letters.

Examples:
  sslight prepare --config configs/dino_cnn_sslight.yaml --format imagenet \
      --source /data/imagenet/train --out /data/shards --epochs 2 --seed 0
  sslight prepare --config dino_fmnist_sslight --format idx \
      --source /usr/share/datasets/fashion-mnist --out gs://bucket/fmnist-shards \
      --runner=dataflow --project=P --region=europe-west4 \
      --staging_location=gs://bucket/stg --temp_location=gs://bucket/tmp`

func runPrepare(ctx context.Context, args []string) error {
	fs := cli.NewPipelineFlagSet("prepare", "--config FILE --source URI --out URI [flags]", prepareDescription)
	cfgPath := fs.String("config", "", "SSLight-schema YAML file, or a preset name ("+strings.Join(configs.PresetNames(), ", ")+")")
	src := fs.String("source", "", "data root: a local folder or gs://bucket/prefix (default DATA.PATH_TO_DATA_DIR)")
	out := fs.String("out", "", "output root for shards and manifest: a local folder or gs://bucket/prefix")
	format := fs.String("format", "", "source layout: imagenet (<root>/<class>/<image>), coco, idx (MNIST-style) or folder (default DATA.FORMAT)")
	split := fs.String("split", "", "split to read: coco annotations/instances_<split>.json (default train2017); idx <split>-images-idx3-ubyte (default train)")
	subset := fs.String("subset", "", "imagenet: keep only the files listed in this file (the reference's semi_*percent.txt format)")
	epochs := fs.Int("epochs", 1, "number of epochs of views to prepare")
	seed := fs.String("seed", "", "global seed (default SEED of the config)")
	shardMB := fs.Int("shard-size-mb", 0, "target shard size in MiB (default DATA.SHARD_SIZE_MB)")
	limit := fs.Int("limit", 0, "prepare only the first N listed inputs (0 = all); for quick trials")
	workers := fs.Int("workers", 0, "decode/augment goroutines per shard (0 = 2×GOMAXPROCS)")
	overwrite := fs.Bool("overwrite", false, "allow --out to hold a manifest of another configuration")
	emit := fs.String("emit", "views", "what the shards hold: views (every epoch's multi-crop views, rendered here) or images (decoded images once, shrunk to --image-size; the trainer renders each epoch's views)")
	imageSize := fs.Int("image-size", 0, "shrink every image whose shorter side is longer to this shorter side before views are cut or it is stored (0 = views from full-size images; images default to GLOBAL_CROP_SIZE×256/224); views and images of the same --image-size give identical views")
	decodeMB := fs.Int("decode-memory-mb", 0, "bound on the memory of the decodes running at once in each worker, estimated from the image headers; an image over it is decoded alone (0 = a quarter of the worker's memory)")
	var sets cli.Repeated
	fs.Var(&sets, "set", "override a config key, KEY=VALUE (repeatable), e.g. --set MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE=96")
	quiet := fs.Bool("quiet", false, "no progress display")
	storageOpts := addStorageFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := storageOpts.apply(); err != nil {
		return err
	}
	if err := fs.Require("config", "out"); err != nil {
		return err
	}
	if err := fs.AtLeast(1, "epochs", "shard-size-mb"); err != nil {
		return err
	}
	if err := fs.AtLeast(0, "limit", "workers"); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, sets, "DATA.FORMAT", *format, "DATA.SHARD_SIZE_MB", strconv.Itoa(*shardMB))
	if err != nil {
		return err
	}
	if *seed != "" {
		if _, err := strconv.ParseUint(*seed, 10, 32); err != nil {
			return fmt.Errorf("--seed %q: want an integer in [0, 2^32)", *seed)
		}
		if err := cfg.Set("SEED", *seed); err != nil {
			return err
		}
	}
	// The source location is not written into the config: the config hash
	// names the shards, and the same images prepared from a local copy or
	// from gs:// must give the same shards.
	if *src == "" {
		*src = cfg.Data.PathToDataDir
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	opts := prepare.Options{Config: cfg, Source: *src, Out: *out, Split: *split, SubsetFile: *subset, Epochs: *epochs, Limit: *limit,
		Workers: *workers, Overwrite: *overwrite, Emit: *emit, ImageSize: *imageSize, DecodeMemoryMB: *decodeMB}
	if !*quiet {
		opts.Progress = os.Stderr
	}
	sum, err := prepare.Run(ctx, opts)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(sum, "", "  ")
	fmt.Println(string(b))
	if sum.Samples == 0 {
		fmt.Fprintf(os.Stderr, "sslight prepare: warning: no sample was written, every input was refused; the reasons are in %s\n",
			strings.TrimSuffix(sum.Manifest, "manifest.json")+"dead-letter.jsonl")
	}
	return nil
}
