package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/sslight-go/sslight/sinks/coco"
	"github.com/sslight-go/sslight/sinks/storage"
)

// DefaultCOCOSplit is the COCO split listed when Options.Split is empty.
const DefaultCOCOSplit = "train2017"

// COCOMeta is what a COCO item's Meta holds: the image record's id and
// size, and its annotations that passed coco.Check (possibly none).
type COCOMeta struct {
	ImageID     int64             `json:"image_id"`
	Width       int               `json:"width"`
	Height      int               `json:"height"`
	Annotations []coco.Annotation `json:"annotations"`
}

// listCOCO reads <root>/annotations/instances_<split>.json, checks it, and
// lists its images under <root>/<split>/. Images are matched against one
// listing of the image folder rather than one stat per image, which on
// gs:// is one request per thousand images instead of one per image.
// Files in the folder that no image record names are not inputs.
func listCOCO(ctx context.Context, root string, opts Options) (*Listing, error) {
	split := opts.Split
	if split == "" {
		split = DefaultCOCOSplit
	}
	annRel := "annotations/instances_" + split + ".json"
	annURI := join(root, annRel)
	rc, err := storage.Open(ctx, annURI)
	if err != nil {
		return nil, fmt.Errorf("source: %w: annotations file %s: %v: expected <root>/%s and <root>/%s/<images> (COCO layout)",
			ErrLayout, annURI, err, annRel, split)
	}
	d, err := coco.Parse(rc, annURI)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	ix, probs := coco.Check(d)

	imgRoot := join(root, split)
	objs, err := walk(ctx, imgRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// A missing image folder leaves every image missing, which the loop
	// below reports image by image.
	files := make(map[string]storage.Object, len(objs))
	for _, o := range objs {
		files[o.Rel] = o
	}

	l := &Listing{}
	for _, c := range ix.Categories {
		l.Classes = append(l.Classes, c.Name)
	}
	for _, im := range ix.Images {
		key := split + "/" + im.FileName
		uri := join(imgRoot, im.FileName)
		o, ok := files[im.FileName]
		switch {
		case !ok:
			l.Rejected = append(l.Rejected, Rejection{URI: uri, Key: key, Stage: StageList, IsItem: true,
				Error: fmt.Sprintf("missing: image id %d names %s, which does not exist", im.ID, uri)})
			continue
		case o.Err != nil:
			l.Rejected = append(l.Rejected, Rejection{URI: uri, Key: key, Stage: StageList, IsItem: true, Error: o.Err.Error()})
			continue
		}
		anns := ix.Annotations[im.ID]
		if anns == nil {
			anns = []coco.Annotation{}
		}
		meta, err := json.Marshal(COCOMeta{ImageID: im.ID, Width: im.Width, Height: im.Height, Annotations: anns})
		if err != nil {
			return nil, fmt.Errorf("source: encode the annotations of image %d: %w", im.ID, err)
		}
		l.Items = append(l.Items, Item{URI: o.URI, Key: key, Index: -1, Label: -1,
			Size: o.Size, MTime: o.MTime, Generation: o.Generation, Meta: meta})
	}

	// Every refused record is reported: images as refused inputs, annotations
	// and categories as refused metadata of inputs that may still be listed.
	fileOf := make(map[int64]string, len(d.Images))
	for _, im := range d.Images {
		if _, dup := fileOf[im.ID]; !dup {
			fileOf[im.ID] = im.FileName
		}
	}
	annBase := annRel + "#"
	for _, p := range probs {
		r := Rejection{Key: annBase + p.Path, Stage: StageAnnotation, IsItem: p.Kind == coco.KindImage,
			Error: fmt.Sprintf("%s id %d: %s", p.Kind, p.ID, p.Reason)}
		var f string
		switch p.Kind {
		case coco.KindImage:
			f = d.Images[p.Index].FileName
		case coco.KindAnnotation:
			f = fileOf[p.ImageID]
		}
		if coco.CleanRelative(f) {
			r.URI = join(imgRoot, f)
		} else {
			// No image to name (e.g. an annotation of an unknown image id):
			// point at the record inside the annotations file.
			r.URI = annURI + "#" + p.Path
		}
		l.Rejected = append(l.Rejected, r)
	}
	return l, nil
}
