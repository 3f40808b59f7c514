package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/coco"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/detect"
	"github.com/sslight-go/sslight/transforms/source"
)

// protoDetection is the detection transfer protocol: a CenterNet-style
// head on the backbone, fine-tuned on a COCO-format set, box AP.
const protoDetection = "detection"

// detectSpec is what the detection protocol runs on.
type detectSpec struct {
	Train, Val           string // COCO-format roots
	TrainSplit, ValSplit string // annotations/instances_<split>.json and <split>/
	// Size is the square input size; 0 takes the first training image's
	// width (the generator's canvases are all one size).
	Size   int
	Config detect.Config
}

// detectionData is the protocol's input, loaded once for all models.
type detectionData struct {
	train, val *detect.Set
	valGT      *coco.Dataset
}

// hasClassification says whether protocols asks for any protocol that
// needs extracted features and labelled classification sources.
func hasClassification(protocols []string) bool {
	return slices.ContainsFunc(protocols, func(p string) bool { return p != protoDetection })
}

// loadDetectionData lists, checks and decodes the detection sets before
// any model is trained, so that bad input stops the run early: missing or
// refused images, category lists that differ between the splits, empty
// sets.
func loadDetectionData(ctx context.Context, spec detectSpec, pixelLimit int64) (*detectionData, error) {
	if spec.Train == "" || spec.Val == "" {
		return nil, errors.New("the detection protocol needs --det-train and --det-val (COCO-format roots, e.g. from sslight dataset make-coco)")
	}
	type split struct {
		flag, root, split string
		list              *source.Listing
		gt                *coco.Dataset
	}
	sp := []*split{{flag: "--det-train", root: spec.Train, split: spec.TrainSplit}, {flag: "--det-val", root: spec.Val, split: spec.ValSplit}}
	for _, s := range sp {
		l, err := source.List(ctx, source.FormatCOCO, s.root, source.Options{Split: s.split})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.flag, err)
		}
		if len(l.Items) == 0 {
			return nil, fmt.Errorf("%s %s (split %s) lists no images", s.flag, s.root, s.split)
		}
		// Refused records would silently change what is scored: a missing
		// validation image still counts its objects as missed.
		if len(l.Rejected) > 0 {
			r := l.Rejected[0]
			return nil, fmt.Errorf("%s %s: %d images or annotations refused, e.g. %s: %s", s.flag, s.root, len(l.Rejected), r.Key, r.Error)
		}
		uri := storage.Join(s.root, "annotations", "instances_"+s.split+".json")
		rc, err := storage.Open(ctx, uri)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.flag, err)
		}
		d, err := coco.Parse(rc, uri)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.flag, err)
		}
		s.list, s.gt = l, d
	}
	tc, vc := categories(sp[0].gt), categories(sp[1].gt)
	if !slices.Equal(tc, vc) {
		return nil, fmt.Errorf("the detection splits' categories differ: --det-train has %s, --det-val %s", clip(tc), clip(vc))
	}
	size := spec.Size
	if size == 0 {
		var m source.COCOMeta
		if err := json.Unmarshal(sp[0].list.Items[0].Meta, &m); err != nil {
			return nil, err
		}
		size = m.Width
	}
	if size < 16 || size > 1024 {
		return nil, fmt.Errorf("detection input size %d px: want 16–1024 (--det-size)", size)
	}
	ids := categoryIDs(sp[0].gt)
	data := &detectionData{valGT: sp[1].gt}
	for i, s := range sp {
		set, err := loadDetectionSet(ctx, s.list, ids, size, pixelLimit)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.flag, err)
		}
		if i == 0 {
			data.train = set
		} else {
			data.val = set
		}
	}
	return data, nil
}

// categories lists a data set's categories as "id:name", sorted by id.
func categories(d *coco.Dataset) []string {
	cs := slices.Clone(d.Categories)
	slices.SortFunc(cs, func(a, b coco.Category) int { return cmp.Compare(a.ID, b.ID) })
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%d:%s", c.ID, c.Name)
	}
	return out
}

func categoryIDs(d *coco.Dataset) []int64 {
	ids := make([]int64, len(d.Categories))
	for i, c := range d.Categories {
		ids[i] = c.ID
	}
	slices.Sort(ids)
	return ids
}

// loadDetectionSet decodes the listed images, resizes them to size×size
// (PIL bicubic; boxes scaled along) and keeps their non-crowd boxes.
func loadDetectionSet(ctx context.Context, l *source.Listing, ids []int64, size int, pixelLimit int64) (*detect.Set, error) {
	classOf := map[int64]int{}
	for i, id := range ids {
		classOf[id] = i
	}
	set := &detect.Set{Size: size, CategoryIDs: ids, Images: make([]detect.Image, len(l.Items))}
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for w := range errs {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var src, dst augment.Image
			for i := w; i < len(l.Items); i += len(errs) {
				it := l.Items[i]
				var meta source.COCOMeta
				if err := json.Unmarshal(it.Meta, &meta); err != nil {
					errs[w] = fmt.Errorf("%s: annotations: %w", it.URI, err)
					return
				}
				data, err := source.ReadItem(ctx, it)
				if err != nil {
					errs[w] = fmt.Errorf("%s: %w", it.URI, err)
					return
				}
				if _, err := decode.DecodeInto(&src, data, decode.Options{MaxPixels: pixelLimit}); err != nil {
					errs[w] = fmt.Errorf("%s: %w", it.URI, err)
					return
				}
				img := &src
				if src.W != size || src.H != size {
					if err := augment.Resize(&dst, &src, size, size); err != nil {
						errs[w] = fmt.Errorf("%s: resize to %d px: %w", it.URI, size, err)
						return
					}
					img = &dst
				}
				sx, sy := float64(src.W)/float64(size), float64(src.H)/float64(size)
				im := detect.Image{ID: meta.ImageID, Pix: slices.Clone(img.Tight()), ScaleX: sx, ScaleY: sy}
				for _, a := range meta.Annotations {
					// Crowd regions are not objects to find; COCO's
					// evaluation ignores detections matched to them.
					if a.IsCrowd != 0 {
						continue
					}
					b := a.BBox
					im.Objects = append(im.Objects, detect.Object{Class: classOf[a.CategoryID], Box: [4]float64{b[0] / sx, b[1] / sy, b[2] / sx, b[3] / sy}})
				}
				set.Images[i] = im
			}
		}(w)
	}
	wg.Wait()
	return set, errors.Join(errs...)
}

// prepareDetection loads the detection sets when the protocol is asked
// for (nil otherwise).
func prepareDetection(ctx context.Context, spec evalSpec, cfg *configs.Config) (*detectionData, error) {
	if !slices.Contains(spec.Protocols, protoDetection) {
		return nil, nil
	}
	if strings.HasPrefix(cfg.Model.BackboneArch, "vit") {
		return nil, fmt.Errorf("the detection protocol needs a CNN's feature map; %s has none", cfg.Model.BackboneArch)
	}
	return loadDetectionData(ctx, spec.Detection, cfg.Data.PixelLimit)
}

// detectionOnly scores every model with the detection protocol when it is
// the only one asked for: no features are extracted and no classification
// sources are needed.
func detectionOnly(ctx context.Context, models []evalModel, spec evalSpec, out string, det *detectionData) ([]report.Row, error) {
	var rows []report.Row
	for _, m := range models {
		if m.RawPixels {
			continue // raw pixels have no feature map to detect on
		}
		row := &report.Row{Name: m.Name, Method: m.Method, Setting: m.Setting, Dataset: spec.Detection.Train,
			Metrics: map[string]float64{}, Protocols: map[string]string{}, Seconds: map[string]float64{}, Training: m.Training}
		if err := detectionProtocol(ctx, m, spec, det, out, row); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		rows = append(rows, *row)
	}
	if len(rows) == 0 {
		return nil, errors.New("the detection protocol has no model to score (raw pixels have no backbone)")
	}
	return rows, nil
}

// detectionProtocol runs the detection protocol for one model and records
// its metrics, settings and wall time in row (nothing for raw pixels).
func detectionProtocol(ctx context.Context, m evalModel, spec evalSpec, det *detectionData, out string, row *report.Row) error {
	if m.RawPixels {
		return nil
	}
	t := time.Now()
	if spec.Progress != nil {
		fmt.Fprintf(spec.Progress, "eval %s: detection: fine-tuning on %d images\n", m.Name, len(det.train.Images))
	}
	res, err := runDetection(ctx, m, spec, det, storage.Join(out, "detection", slug(m.Name)))
	if err != nil {
		return fmt.Errorf("%s protocol: %w", protoDetection, err)
	}
	for k, v := range res.metrics {
		row.Metrics[k] = v
	}
	row.Protocols[protoDetection] = res.desc
	if row.Arch == "" {
		row.Arch, row.ConfigHash = res.arch, res.configHash
		if m.Checkpoint != "" {
			row.Checkpoint = res.checkpoint
		}
	}
	row.Seconds[protoDetection] = time.Since(t).Seconds()
	if spec.Progress != nil {
		fmt.Fprintf(spec.Progress, "eval %s: detection AP %.2f AP50 %.2f in %s\n", m.Name, res.metrics["ap"], res.metrics["ap50"], time.Since(t).Round(time.Millisecond))
	}
	return nil
}

// detectionResult is one model's outcome of the protocol.
type detectionResult struct {
	metrics                      map[string]float64
	desc                         string
	arch, configHash, checkpoint string
}

// detectionBackbone returns the model's backbone: the checkpoint's weights,
// or its config's architecture freshly initialised.
func detectionBackbone(ctx context.Context, m evalModel, res *detectionResult) (backbone.Backbone, *configs.Config, error) {
	if m.Checkpoint == "" {
		cfg := m.Config
		bb, err := backbone.New(cfg.Model.BackboneArch, backbone.Options{Seed: uint64(cfg.Seed), Width: cfg.Model.Width,
			SmallImageStem: cfg.Model.SmallImageStem, PatchSize: cfg.ViT.PatchSize})
		if err == nil {
			res.arch, res.configHash = bb.Arch(), cfg.Hash()
		}
		return bb, cfg, err
	}
	dir, meta, err := resolveCheckpoint(ctx, m.Checkpoint)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := configs.Parse(meta.Config, "checkpoint config")
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint config: %w", err)
	}
	bb, err := backbone.New(meta.Arch, backbone.Options{Width: meta.Width, SmallImageStem: meta.SmallImageStem, PatchSize: meta.PatchSize})
	if err != nil {
		return nil, nil, err
	}
	f, err := readSafetensors(ctx, storage.Join(dir, checkpoint.BackboneFile))
	if err != nil {
		return nil, nil, err
	}
	if err := backbone.LoadStateDict(bb, f); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	res.arch, res.configHash, res.checkpoint = meta.Arch, meta.ConfigHash, dir
	return bb, cfg, nil
}

// runDetection fine-tunes the model's backbone with a detection head on
// the training split, writes the validation detections as a COCO results
// file under out and scores them with COCOeval (bbox). Metrics are AP×100
// as the paper reports them; APs/APm/APl only where defined.
func runDetection(ctx context.Context, m evalModel, spec evalSpec, data *detectionData, out string) (*detectionResult, error) {
	res := &detectionResult{}
	bb, cfg, err := detectionBackbone(ctx, m, res)
	if err != nil {
		return nil, err
	}
	dc := spec.Detection.Config
	dc.Seed, dc.Progress = spec.Seed, spec.Progress
	train, val := *data.train, *data.val
	train.Mean, train.Std = f32x3(cfg.Data.Mean), f32x3(cfg.Data.Std)
	val.Mean, val.Std = train.Mean, train.Std
	model, err := detect.NewModel(bb, len(train.CategoryIDs), dc)
	if err != nil {
		return nil, err
	}
	tr, err := detect.Train(model, &train, dc)
	if err != nil {
		return nil, err
	}
	results, err := detect.Predict(model, &val, dc.MaxDets)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(results)
	if err != nil {
		return nil, err
	}
	resURI := storage.Join(out, "detections.json")
	if err := storage.WriteFile(ctx, resURI, append(b, '\n')); err != nil {
		return nil, err
	}
	mt, err := detect.Score(ctx, data.valGT, results)
	if err != nil {
		return nil, fmt.Errorf("score %s: %w", resURI, err)
	}
	metrics := map[string]float64{"ap": 100 * mt.AP, "ap50": 100 * mt.AP50, "ap75": 100 * mt.AP75}
	for k, v := range map[string]float64{"aps": mt.APs, "apm": mt.APm, "apl": mt.APl} {
		if v >= 0 {
			metrics[k] = 100 * v
		}
	}
	up := "no upsampling"
	if dc.Upsample {
		up = "upsampled once"
	}
	res.metrics, res.desc = metrics, fmt.Sprintf("CenterNet-style head (%s, 3x3 conv %d ch + ReLU, heatmap/size/offset 1x1; focal α=2 β=4, L1 size×%g offset×%g) on the last feature map (output stride %g), "+
		"backbone + head fine-tuned on %d images at %d px: %s lr %g cosine, batch %d, %d epochs (%d steps), wd %g, flips=%v; "+
		"%d validation images, top %d detections, bbox AP by pycocotools' COCOeval (no masks: segm AP not computed); detections in %s",
		up, dc.HeadChannels, dc.SizeWeight, dc.OffsetWeight, tr.Stride, len(train.Images), train.Size, dc.Optimizer, dc.LR, dc.BatchSize, dc.Epochs, tr.Steps, dc.WeightDecay, dc.Flip,
		len(val.Images), dc.MaxDets, resURI)
	return res, nil
}
