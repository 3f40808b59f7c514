package source

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cocoVal is an instances file with one record of each kind of fault, next
// to valid ones. Images are 10 wide, 8 high.
const cocoVal = `{
 "info": {"description": "fixture", "year": 2017},
 "licenses": [{"id": 1, "name": "CC BY"}],
 "images": [
  {"id": 1, "width": 10, "height": 8, "file_name": "a.jpg", "license": 1},
  {"id": 2, "width": 10, "height": 8, "file_name": "b.jpg"},
  {"id": 3, "width": 10, "height": 8, "file_name": "missing.jpg"},
  {"id": 4, "width": 0, "height": 8, "file_name": "c.jpg"},
  {"id": 1, "width": 10, "height": 8, "file_name": "d.jpg"},
  {"id": 5, "width": 10, "height": 8, "file_name": "sub/e.jpg"}
 ],
 "annotations": [
  {"id": 10, "image_id": 1, "category_id": 44, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0, "segmentation": [[1, 1, 5, 1, 5, 5]]},
  {"id": 11, "image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 8], "area": 80, "iscrowd": 0},
  {"id": 12, "image_id": 2, "category_id": 99, "bbox": [1, 1, 1, 1], "area": 1, "iscrowd": 0},
  {"id": 13, "image_id": 7, "category_id": 2, "bbox": [1, 1, 1, 1], "area": 1, "iscrowd": 0},
  {"id": 14, "image_id": 2, "category_id": 2, "bbox": [8, 1, 4, 4], "area": 16, "iscrowd": 0},
  {"id": 10, "image_id": 2, "category_id": 2, "bbox": [1, 1, 1, 1], "area": 1, "iscrowd": 0},
  {"id": 15, "image_id": 4, "category_id": 2, "bbox": [1, 1, 1, 1], "area": 1, "iscrowd": 0},
  {"id": 16, "image_id": 2, "category_id": 2, "bbox": [0, 0, -1, 3], "area": 0, "iscrowd": 0},
  {"id": 17, "image_id": 2, "category_id": 44, "bbox": [3, 0, 1, 8], "area": 10, "iscrowd": 1,
   "segmentation": {"size": [8, 10], "counts": [30, 10, 40]}}
 ],
 "categories": [{"id": 44, "name": "bottle", "supercategory": "kitchen"}, {"id": 2, "name": "bicycle"}, {"id": 2, "name": "again"}],
 "type": "instances"
}`

func cocoTree(t *testing.T) map[string][]byte {
	return map[string][]byte{
		"annotations/instances_val.json": []byte(cocoVal),
		"val/a.jpg":                      photo(t, 0),
		"val/b.jpg":                      photo(t, 1),
		"val/c.jpg":                      photo(t, 2),
		"val/d.jpg":                      photo(t, 2),
		"val/sub/e.jpg":                  photo(t, 1),
		"val/unreferenced.jpg":           photo(t, 0),
	}
}

func TestListCOCO(t *testing.T) {
	local := t.TempDir()
	writeTree(t, local, cocoTree(t))
	mem := memRoot(t)
	writeTree(t, mem, cocoTree(t))
	for _, root := range []string{local, mem} {
		t.Run(root[:8], func(t *testing.T) {
			l, err := List(context.Background(), FormatCOCO, root, Options{Split: "val"})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(l.Classes, []string{"bicycle", "bottle"}) {
				t.Fatalf("classes %v, want category names in id order", l.Classes)
			}
			if !slices.Equal(keys(l.Items), []string{"val/a.jpg", "val/b.jpg", "val/sub/e.jpg"}) {
				t.Fatalf("items %v", keys(l.Items))
			}
			wantAnns := map[string][]int64{"val/a.jpg": {10, 11}, "val/b.jpg": {17}, "val/sub/e.jpg": {}}
			wantID := map[string]int64{"val/a.jpg": 1, "val/b.jpg": 2, "val/sub/e.jpg": 5}
			for _, it := range l.Items {
				if it.Label != -1 || it.Index != -1 || it.URI != join(root, it.Key) || it.Size != int64(len(cocoTree(t)[it.Key])) {
					t.Fatalf("item %+v", it)
				}
				// Decode Meta generically: its JSON shape is the contract.
				var meta struct {
					ImageID     *int64 `json:"image_id"`
					Width       int    `json:"width"`
					Height      int    `json:"height"`
					Annotations []struct {
						ID           int64           `json:"id"`
						BBox         []float64       `json:"bbox"`
						Segmentation json.RawMessage `json:"segmentation"`
					} `json:"annotations"`
				}
				if err := json.Unmarshal(it.Meta, &meta); err != nil {
					t.Fatal(err)
				}
				var ids []int64
				for _, a := range meta.Annotations {
					ids = append(ids, a.ID)
				}
				if meta.ImageID == nil || *meta.ImageID != wantID[it.Key] || meta.Width != 10 || meta.Height != 8 ||
					meta.Annotations == nil || !slices.Equal(ids, wantAnns[it.Key]) {
					t.Fatalf("%s meta %s", it.Key, it.Meta)
				}
				if it.Key == "val/b.jpg" && string(meta.Annotations[0].Segmentation) != `{"size":[8,10],"counts":[30,10,40]}` {
					t.Fatalf("crowd segmentation %s", meta.Annotations[0].Segmentation)
				}
			}
			type rej struct {
				key, stage, err string
				item            bool
				file            string // image file the URI names, "" for none
			}
			ann := "annotations/instances_val.json#"
			want := []rej{
				{"val/missing.jpg", StageList, "missing: image id 3 names", true, "missing.jpg"},
				{ann + "categories[2]", StageAnnotation, "category id 2: duplicate category id 2", false, ""},
				{ann + "images[3]", StageAnnotation, "image id 4: width and height must be positive, got 0x8", true, "c.jpg"},
				{ann + "images[4]", StageAnnotation, "image id 1: duplicate image id 1", true, "d.jpg"},
				{ann + "annotations[2]", StageAnnotation, "annotation id 12: unknown category id 99", false, "b.jpg"},
				{ann + "annotations[3]", StageAnnotation, "annotation id 13: unknown image id 7", false, ""},
				{ann + "annotations[4]", StageAnnotation, "annotation id 14: bbox [8, 1, 4, 4] lies outside the 10x8 image", false, "b.jpg"},
				{ann + "annotations[5]", StageAnnotation, "annotation id 10: duplicate annotation id 10", false, "b.jpg"},
				{ann + "annotations[6]", StageAnnotation, "annotation id 15: image id 4 was refused", false, "c.jpg"},
				{ann + "annotations[7]", StageAnnotation, "annotation id 16: negative bbox size -1x3", false, "b.jpg"},
			}
			if len(l.Rejected) != len(want) {
				t.Fatalf("%d rejections %+v, want %d", len(l.Rejected), l.Rejected, len(want))
			}
			for i, w := range want {
				r := l.Rejected[i]
				// Without an image to name, the URI points at the record
				// inside the annotations file.
				wantURI := join(root, "annotations/instances_val.json") + "#" + strings.TrimPrefix(w.key, ann)
				if w.file != "" {
					wantURI = join(join(root, "val"), w.file)
				}
				if r.Key != w.key || r.Stage != w.stage || r.IsItem != w.item || !strings.HasPrefix(r.Error, w.err) || r.URI != wantURI {
					t.Fatalf("rejection %d = %+v\nwant %+v (uri %q)", i, r, w, wantURI)
				}
			}
			// Every image record is accounted for: 3 items + 3 refused inputs.
			if l.Inputs() != 6 {
				t.Fatalf("Inputs() = %d, want 6", l.Inputs())
			}
		})
	}
}

// TestListCOCOGolden lists the golden evaluation case's ground truth (real
// pycocotools-checked data): every record is valid, so all 36 images are
// items and their Meta carries all 105 annotations.
func TestListCOCOGolden(t *testing.T) {
	gt, err := os.ReadFile(filepath.Join("..", "..", "testdata", "source", "coco", "crowd_manydets_gt.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Images []struct {
			FileName string `json:"file_name"`
		} `json:"images"`
	}
	if err := json.Unmarshal(gt, &doc); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	files := map[string][]byte{"annotations/instances_golden.json": gt}
	for _, im := range doc.Images {
		files["golden/"+im.FileName] = photo(t, 0)
	}
	writeTree(t, root, files)
	l, err := List(context.Background(), FormatCOCO, root, Options{Split: "golden"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 36 || len(l.Rejected) != 0 {
		t.Fatalf("%d items, rejections %v", len(l.Items), l.Rejected)
	}
	if !slices.Equal(l.Classes, []string{"person", "car", "dog", "bottle"}) {
		t.Fatalf("classes %v", l.Classes)
	}
	total := 0
	for _, it := range l.Items {
		var meta struct {
			Annotations []json.RawMessage `json:"annotations"`
		}
		if err := json.Unmarshal(it.Meta, &meta); err != nil {
			t.Fatal(err)
		}
		total += len(meta.Annotations)
	}
	if total != 105 {
		t.Fatalf("%d annotations in Meta, want 105", total)
	}
}

func TestListCOCOErrors(t *testing.T) {
	noAnn := t.TempDir()
	writeTree(t, noAnn, map[string][]byte{"val/a.jpg": photo(t, 0)})
	badJSON := t.TempDir()
	writeTree(t, badJSON, map[string][]byte{"annotations/instances_val.json": []byte(`{"images": [{"id": 1, "width": "10", "height": 8, "file_name": "a.jpg"}]}`)})
	noImages := t.TempDir()
	writeTree(t, noImages, map[string][]byte{"annotations/instances_val.json": []byte(`{"images": [{"id": 1, "width": 10, "height": 8, "file_name": "a.jpg"}]}`)})

	_, err := List(context.Background(), FormatCOCO, noAnn, Options{Split: "val"})
	if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), filepath.Join(noAnn, "annotations", "instances_val.json")) ||
		!strings.Contains(err.Error(), "(COCO layout)") {
		t.Fatalf("no annotations file: %v", err)
	}
	_, err = List(context.Background(), FormatCOCO, noAnn, Options{})
	if err == nil || !strings.Contains(err.Error(), "instances_train2017.json") {
		t.Fatalf("default split: %v", err)
	}
	_, err = List(context.Background(), FormatCOCO, badJSON, Options{Split: "val"})
	if err == nil || !strings.Contains(err.Error(), "images[0].width: want an integer, got JSON string") {
		t.Fatalf("wrong type: %v", err)
	}
	// No image folder at all: the listing works and every image is missing.
	l, err := List(context.Background(), FormatCOCO, noImages, Options{Split: "val"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 || len(l.Rejected) != 1 || !strings.HasPrefix(l.Rejected[0].Error, "missing:") {
		t.Fatalf("items %v rejected %+v", keys(l.Items), l.Rejected)
	}
}
