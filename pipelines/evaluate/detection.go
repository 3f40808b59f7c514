package evaluate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/coco"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/detect"
	"github.com/sslight-go/sslight/transforms"
	"github.com/sslight-go/sslight/transforms/source"
)

// detectionData is the detection protocol's input, loaded once for all
// models.
type detectionData struct {
	train, val *detect.Set
	valGT      *coco.Dataset
}

// prepareDetection loads the detection sets when the protocol is asked
// for (nil otherwise).
func prepareDetection(ctx context.Context, spec Spec, cfg *configs.Config) (*detectionData, error) {
	if !slices.Contains(spec.Protocols, ProtocolDetection) {
		return nil, nil
	}
	if strings.HasPrefix(cfg.Model.BackboneArch, "vit") {
		return nil, fmt.Errorf("the detection protocol needs a CNN's feature map; %s has none", cfg.Model.BackboneArch)
	}
	return loadDetectionData(ctx, spec.Detection, cfg.Data.PixelLimit)
}

// loadDetectionData lists, checks and decodes the detection sets before
// any model is trained, so that bad input stops the run early: missing or
// refused images, category lists that differ between the splits, empty
// sets.
func loadDetectionData(ctx context.Context, spec DetectionSpec, pixelLimit int64) (*detectionData, error) {
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
		set, err := detectionSet(ctx, s.list, ids, size, pixelLimit)
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

// detectionSet decodes the listed images at size×size and turns their
// objects' categories into class indices of ids.
func detectionSet(ctx context.Context, l *source.Listing, ids []int64, size int, pixelLimit int64) (*detect.Set, error) {
	ims, err := transforms.LoadDetectionImages(ctx, l.Items, size, pixelLimit)
	if err != nil {
		return nil, err
	}
	classOf := map[int64]int{}
	for i, id := range ids {
		classOf[id] = i
	}
	set := &detect.Set{Size: size, CategoryIDs: ids, Images: make([]detect.Image, len(ims))}
	for i, im := range ims {
		d := detect.Image{ID: im.ID, Pix: im.Pix, ScaleX: im.ScaleX, ScaleY: im.ScaleY}
		for _, o := range im.Objects {
			c, ok := classOf[o.CategoryID]
			if !ok {
				return nil, fmt.Errorf("%s: an object of category %d, which the annotations do not list", l.Items[i].URI, o.CategoryID)
			}
			d.Objects = append(d.Objects, detect.Object{Class: c, Box: o.Box})
		}
		set.Images[i] = d
	}
	return set, nil
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

// detectionOnly scores every model with the detection protocol when it is
// the only one asked for: no features are extracted and no classification
// sources are needed.
func detectionOnly(ctx context.Context, models []Model, spec Spec, out string, det *detectionData) ([]report.Row, error) {
	var rows []report.Row
	for _, m := range models {
		if m.RawPixels {
			continue // raw pixels have no feature map to detect on
		}
		row := newRow(m, DatasetName(spec.Detection.Train))
		if err := describeModel(ctx, m, row); err != nil {
			return nil, err
		}
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
func detectionProtocol(ctx context.Context, m Model, spec Spec, det *detectionData, out string, row *report.Row) error {
	if m.RawPixels {
		return nil
	}
	t := time.Now()
	logf(spec.Progress, "eval %s: detection: fine-tuning on %d images", m.Name, len(det.train.Images))
	if err := runDetection(ctx, m, spec, det, DetectionsFile(out, m.Name), row); err != nil {
		return fmt.Errorf("%s protocol: %w", ProtocolDetection, err)
	}
	row.Seconds[ProtocolDetection] = time.Since(t).Seconds()
	logf(spec.Progress, "eval %s: detection AP %.2f AP50 %.2f in %s", m.Name, row.Metrics["ap"], row.Metrics["ap50"], time.Since(t).Round(time.Millisecond))
	return nil
}

// runDetection fine-tunes the model's backbone with a detection head on
// the training split, writes the validation detections as a COCO results
// file to resURI, scores them with COCOeval (bbox) and records the outcome
// in row. Metrics are AP×100 as the paper reports them; APs/APm/APl only
// where defined.
func runDetection(ctx context.Context, m Model, spec Spec, data *detectionData, resURI string, row *report.Row) error {
	bb, cfg, ck, err := modelBackbone(ctx, m)
	if err != nil {
		return err
	}
	dc := spec.Detection.Config
	dc.Seed, dc.Progress = spec.Seed, spec.Progress
	train, val := *data.train, *data.val
	train.Mean, train.Std = cfg.Data.MeanStd32()
	val.Mean, val.Std = train.Mean, train.Std
	model, err := detect.NewModel(bb, len(train.CategoryIDs), dc)
	if err != nil {
		return err
	}
	tr, err := detect.Train(model, &train, dc)
	if err != nil {
		return err
	}
	results, err := detect.Predict(model, &val, dc.MaxDets)
	if err != nil {
		return err
	}
	b, err := json.Marshal(results)
	if err != nil {
		return err
	}
	if err := storage.WriteFile(ctx, resURI, append(b, '\n')); err != nil {
		return err
	}
	mt, err := detect.Score(ctx, data.valGT, results)
	if err != nil {
		return fmt.Errorf("score %s: %w", resURI, err)
	}
	row.Metrics["ap"], row.Metrics["ap50"], row.Metrics["ap75"] = 100*mt.AP, 100*mt.AP50, 100*mt.AP75
	for k, v := range map[string]float64{"aps": mt.APs, "apm": mt.APm, "apl": mt.APl} {
		if v >= 0 {
			row.Metrics[k] = 100 * v
		}
	}
	up := "no upsampling"
	if dc.Upsample {
		up = "upsampled once"
	}
	row.Protocols[ProtocolDetection] = fmt.Sprintf("CenterNet-style head (%s, 3x3 conv %d ch + ReLU, heatmap/size/offset 1x1; focal α=2 β=4, L1 size×%g offset×%g) on the last feature map (output stride %g), "+
		"backbone + head fine-tuned on %d images at %d px: %s lr %g cosine, batch %d, %d epochs (%d steps), wd %g, flips=%v; "+
		"%d validation images, top %d detections, bbox AP by pycocotools' COCOeval (no masks: segm AP not computed); detections in %s",
		up, dc.HeadChannels, dc.SizeWeight, dc.OffsetWeight, tr.Stride, len(train.Images), train.Size, dc.Optimizer, dc.LR, dc.BatchSize, dc.Epochs, tr.Steps, dc.WeightDecay, dc.Flip,
		len(val.Images), dc.MaxDets, resURI)
	if row.Arch == "" {
		if ck != nil {
			row.Arch, row.ConfigHash, row.Checkpoint = ck.Meta.Arch, ck.Meta.ConfigHash, ck.Dir
		} else {
			row.Arch, row.ConfigHash = bb.Arch(), cfg.Hash()
		}
	}
	return nil
}
