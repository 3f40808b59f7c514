package export

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/sslight-go/sslight/sinks/onnx"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/ssl"
)

// Opset is the ONNX operator set the models use. 13 is the first with
// Softmax over one axis (what attention needs; earlier opsets flatten to
// 2-D first) and the current forms of Pad, Slice and Reshape; 17 would add
// only LayerNormalization, which OpenCV 4.6 cannot load, so LayerNorm is
// written with basic ops either way (see trainer/nn's ONNX notes).
const Opset = 13

// The names of the ONNX model's input and outputs, and of its dynamic
// batch dimension.
const (
	InputName      = "input"
	EmbeddingName  = "embedding"
	FeatureMapName = "feature_map"
	HeadName       = "head"
	// ProjectionName is SwAV's normalised projection (with the head).
	ProjectionName = "projection"
	BatchDim       = "N"
)

func writeONNX(ctx context.Context, p *job, nets *networks) (*Summary, error) {
	desc := checkpoint.Describe(p.meta.Arch, p.meta.BackboneOptions())
	g := onnx.NewGraph("sslight " + desc)
	batch := onnx.Symbolic(BatchDim)
	if p.o.Batch > 0 {
		batch = onnx.Fixed(p.o.Batch)
	}
	x, err := g.Input(InputName, batch, onnx.Fixed(3), onnx.Fixed(p.size), onnx.Fixed(p.size))
	if err != nil {
		return nil, err
	}
	bo, err := backbone.ONNX(nets.backbone, g, x, backbone.ONNXOptions{Height: p.size, Width: p.size, FoldBN: p.o.FoldBN})
	if err != nil {
		return nil, err
	}
	var outs []Output
	declare := func(from, name string, dims ...onnx.Dim) error {
		if err := g.Rename(from, name); err != nil {
			return err
		}
		all := append([]onnx.Dim{batch}, dims...)
		if err := g.Output(name, all...); err != nil {
			return err
		}
		shape := make([]string, len(all))
		for i, d := range all {
			shape[i] = d.String()
		}
		outs = append(outs, Output{Name: name, Shape: shape})
		return nil
	}
	if err := declare(bo.Embedding, EmbeddingName, onnx.Fixed(bo.EmbedDim)); err != nil {
		return nil, err
	}
	if bo.FeatureMap != "" {
		s := bo.FeatureShape
		if err := declare(bo.FeatureMap, FeatureMapName, onnx.Fixed(s[0]), onnx.Fixed(s[1]), onnx.Fixed(s[2])); err != nil {
			return nil, err
		}
	}
	bns := countBN(nets.backbone.Entries())
	if nets.head != nil {
		bns += countBN(nets.head.Entries())
		if err := writeHead(g, nets.head, p.o.FoldBN, declare); err != nil {
			return nil, err
		}
	}
	meta := metadata(p, nets)
	meta["input_size"] = strconv.Itoa(p.size)
	meta["input"] = InputName + " [" + batch.String() + ", 3, " + strconv.Itoa(p.size) + ", " + strconv.Itoa(p.size) +
		"] float32 RGB, ToTensor (value/255) then Normalize(normalize_mean, normalize_std)"
	meta["batch"] = batch.String()
	meta["fold_bn"] = strconv.FormatBool(p.o.FoldBN)
	names := make([]string, len(outs))
	for i, o := range outs {
		names[i] = o.Name
	}
	meta["outputs"] = strings.Join(names, ",")
	gp := g.Proto()
	model := onnx.NewModel(gp, onnx.ModelOptions{Opset: Opset, ProducerName: "sslight", ProducerVersion: Version(),
		DocString: fmt.Sprintf("%s %s backbone of %s checkpoint step %d (%s), exported by sslight", desc, p.weights,
			p.meta.Method, p.meta.Step, p.dir), Metadata: meta})
	data, err := onnx.Marshal(model)
	if err != nil {
		return nil, err
	}
	if err := storage.WriteFile(ctx, p.o.Out, data); err != nil {
		return nil, fmt.Errorf("export: write %s: %w", p.o.Out, err)
	}
	return &Summary{Out: p.o.Out, Format: FormatONNX, Bytes: int64(len(data)), Checkpoint: p.dir, Step: p.meta.Step,
		Method: p.meta.Method, Arch: desc, Weights: p.weights, WithHead: nets.head != nil, Size: p.size, Batch: p.o.Batch,
		FoldBN: p.o.FoldBN, BatchNorms: bns, Outputs: outs, Nodes: len(gp.GetNode()), Opset: Opset,
		Tensors: len(gp.GetInitializer()), Metadata: meta, Notes: p.notes}, nil
}

// writeHead writes the head on the embedding and declares its outputs.
func writeHead(g *onnx.Graph, h headNet, fold bool, declare func(from, name string, dims ...onnx.Dim) error) error {
	switch h := h.(type) {
	case *ssl.DINOHead:
		y, dim, err := h.ONNX(g, EmbeddingName, fold)
		if err != nil {
			return err
		}
		return declare(y, HeadName, onnx.Fixed(dim))
	case *ssl.MoCoHead:
		y, dim, err := h.ONNX(g, EmbeddingName, fold)
		if err != nil {
			return err
		}
		return declare(y, HeadName, onnx.Fixed(dim))
	case *ssl.SwAVHead:
		emb, scores, err := h.ONNX(g, EmbeddingName, fold)
		if err != nil {
			return err
		}
		if err := declare(scores, HeadName, onnx.Fixed(len(h.Prototypes.Data())/h.Prototypes.Value.Shape()[1])); err != nil {
			return err
		}
		return declare(emb, ProjectionName, onnx.Fixed(h.Prototypes.Value.Shape()[1]))
	}
	return fmt.Errorf("export: head %T has no ONNX form", h)
}

// metadata is what both formats record about the export: the network, the
// checkpoint, the input normalisation and the program.
func metadata(p *job, nets *networks) map[string]string {
	o := p.meta.BackboneOptions()
	m := map[string]string{
		"arch":             p.meta.Arch,
		"width":            strconv.FormatFloat(widthOf(o), 'g', -1, 64),
		"small_image_stem": strconv.FormatBool(o.SmallImageStem),
		"embed_dim":        strconv.Itoa(nets.backbone.EmbedDim()),
		"method":           p.meta.Method,
		"weights":          p.weights,
		"with_head":        strconv.FormatBool(nets.head != nil),
		"checkpoint":       p.dir,
		"checkpoint_step":  strconv.Itoa(p.meta.Step),
		"checkpoint_epoch": strconv.Itoa(p.meta.Epoch),
		"config_hash":      p.meta.ConfigHash,
		"normalize_mean":   floats(p.mean[:]),
		"normalize_std":    floats(p.std[:]),
		"sslight_version":  Version(),
	}
	if strings.HasPrefix(p.meta.Arch, "vit") {
		patch := o.PatchSize
		if patch == 0 {
			patch = 16
		}
		m["patch_size"] = strconv.Itoa(patch)
	}
	return m
}

func widthOf(o backbone.Options) float64 {
	if o.Width == 0 {
		return 1
	}
	return o.Width
}

// floats prints a JSON list of numbers.
func floats(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return "[" + strings.Join(s, ", ") + "]"
}
