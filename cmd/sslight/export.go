package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/trainer/export"
)

func init() {
	register(&command{name: "export", summary: "write a checkpoint's student or teacher backbone as ONNX (on-device) or torchvision-named safetensors (PyTorch)", run: runExport})
}

const exportDescription = `Export a trained backbone for use outside sslight.

--checkpoint is a checkpoint folder (…/checkpoints/step-N) or a pretrain --out
(its newest checkpoint). --weights picks the network: student (the trained
network, the default) or teacher (DINO's EMA teacher, MoCo's key encoder;
SwAV has none). Every flag is checked, and meta.json read, before any weights
are; every load is strict.

--format onnx (default): an ONNX model, opset 13, that any ONNX runtime runs.
  input        "input"        float32 [N, 3, S, S], NCHW RGB in [0, 1] then
                              normalised: (x − mean) / std with the training
                              config's DATA.MEAN / DATA.STD (metadata_props
                              "normalize_mean" and "normalize_std" carry them),
                              as sslight's evaluation view (Resize S·256/224,
                              CenterCrop S)
  outputs      "embedding"    [N, D] the backbone's embedding: the global average
                              of the last feature map (CNNs), the final-norm
                              class token (ViTs) — what sslight eval and embed use
               "feature_map"  [N, C, h, w] the last feature map (CNNs only)
               "head"         with --with-head: DINO's logits, MoCo's projection
                              (before its normalisation), SwAV's prototype scores
               "projection"   with --with-head, SwAV: the normalised projection
  S is --size (default the config's GLOBAL_CROP_SIZE; a ViT needs a multiple of
  its patch), N is --batch or "dynamic" (the default: the dimension is named N).
  --fold-bn=true (default) folds each eval-mode BatchNorm into the layer before
  it; --fold-bn=false keeps BatchNormalization nodes.

--format safetensors: the backbone under torchvision/timm names (with
  --with-head, the head under "head." with the reference's names); its
  __metadata__ names the architecture, so python/sslight_torch.py builds the
  torch module from the file alone. --batch, --size and --fold-bn do not apply.

Using the files:
  OpenCV        net = cv2.dnn.readNetFromONNX("m.onnx")
                net.setInput(blob)            # blob [N,3,S,S] float32, normalised
                emb = net.forward("embedding")
  ONNX Runtime  s = onnxruntime.InferenceSession("m.onnx")
                emb = s.run(["embedding"], {"input": blob})[0]
  PyTorch       sys.path.insert(0, "python"); from sslight_torch import load
                model = load("m.safetensors")  # or a checkpoint folder; load(ckpt, weights="teacher")
                emb = model(x)                 # x [N,3,H,W] normalised as above

A JSON summary (outputs with their shapes, node and tensor counts, metadata)
goes to stdout; remarks about options that have no effect go to stderr.

Examples:
  sslight export --checkpoint runs/x/dino_fmnist_sslight/pretrain --out dino.onnx
  sslight export --checkpoint runs/x/pretrain --weights teacher --batch 1 --size 224 --out teacher.onnx
  sslight export --checkpoint gs://b/run/pretrain --format safetensors --with-head --out gs://b/models/dino.safetensors`

func runExport(ctx context.Context, args []string) error {
	fs := cli.NewFlagSet("export", "--checkpoint DIR --out FILE [--format onnx|safetensors] [--weights student|teacher] [flags]", exportDescription)
	o := export.DefaultOptions()
	fs.StringVar(&o.Checkpoint, "checkpoint", "", "checkpoint folder, or a pretrain --out (its newest checkpoint); local or gs://")
	fs.StringVar(&o.Format, "format", o.Format, "onnx (on-device inference) or safetensors (PyTorch, torchvision/timm names)")
	fs.StringVar(&o.Weights, "weights", o.Weights, "student (the trained network) or teacher (DINO's EMA teacher, MoCo's key encoder)")
	fs.BoolVar(&o.WithHead, "with-head", false, "append the method's head (ONNX output \"head\"; safetensors tensors under \"head.\")")
	batch := fs.String("batch", "dynamic", "ONNX input batch size: a positive number, or dynamic")
	fs.IntVar(&o.Size, "size", 0, "ONNX input height and width (0: the training config's GLOBAL_CROP_SIZE)")
	fs.BoolVar(&o.FoldBN, "fold-bn", o.FoldBN, "ONNX: fold eval-mode BatchNorm into the layer before it (--fold-bn=false keeps BatchNormalization nodes)")
	fs.StringVar(&o.Out, "out", "", "file to write, local or gs://")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fs.Require("checkpoint", "out"); err != nil {
		return err
	}
	if err := fs.AtLeast(0, "size"); err != nil {
		return err
	}
	b, err := parseBatch(*batch)
	if err != nil {
		return err
	}
	o.Batch = b
	sum, err := export.Run(ctx, o)
	if err != nil {
		return err
	}
	for _, n := range sum.Notes {
		fmt.Fprintf(os.Stderr, "sslight export: note: %s\n", n)
	}
	out, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	fmt.Println(string(out))
	return nil
}

// parseBatch reads --batch: "dynamic" (0 for export.Options) or a positive
// batch size.
func parseBatch(s string) (int, error) {
	if strings.EqualFold(s, "dynamic") {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("--batch %q: want a positive batch size or dynamic", s)
	}
	return n, nil
}
