package coco

import (
	"errors"
	"strings"
	"testing"
)

// img and ann are one valid image and annotation as JSON text, to build
// malformed documents from.
const (
	img = `{"id": 1, "width": 4, "height": 3, "file_name": "a.jpg"}`
	cat = `{"id": 7, "name": "cat"}`
)

func doc(images, anns string) string {
	return `{"images": [` + images + `], "annotations": [` + anns + `], "categories": [` + cat + `]}`
}

func ann(fields string) string {
	return `{"id": 5, "image_id": 1, "category_id": 7, "area": 2, ` + fields + `}`
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"top-level list", `[]`, "want a JSON object at the top level, got a list"},
		{"no images", `{"annotations": []}`, "images: missing"},
		{"images object", `{"images": {}}`, "images: want a list, got an object"},
		{"images null", `{"images": null}`, "images: want a list, got null"},
		{"image id string", doc(`{"id": "1", "width": 4, "height": 3, "file_name": "a"}`, ``), "images[0].id: want an integer, got JSON string"},
		{"image id float", doc(img+`, {"id": 2.5, "width": 4, "height": 3, "file_name": "b"}`, ``), "images[1].id: want an integer, got JSON number 2.5"},
		{"image no file_name", doc(`{"id": 1, "width": 4, "height": 3}`, ``), "images[0].file_name: missing or null"},
		{"image width null", doc(`{"id": 1, "width": null, "height": 3, "file_name": "a"}`, ``), "images[0].width: missing or null"},
		{"image a string", doc(`"a.jpg"`, ``), "images[0]: want an object, got JSON string"},
		{"bbox 3 numbers", doc(img, ann(`"bbox": [1, 2, 3]`)), "annotations[0].bbox: want 4 numbers [x, y, width, height], got 3"},
		{"bbox string", doc(img, ann(`"bbox": [1, "2", 3, 4]`)), "annotations[0].bbox: want a number, got JSON string"},
		{"bbox missing", doc(img, `{"id": 5, "image_id": 1, "category_id": 7, "area": 1}`), "annotations[0].bbox: missing or null"},
		{"area missing", doc(img, `{"id": 5, "image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1]}`), "annotations[0].area: missing or null"},
		{"iscrowd bool", doc(img, ann(`"bbox": [0, 0, 1, 1], "iscrowd": false`)), "annotations[0].iscrowd: want an integer, got JSON bool"},
		{"segmentation number", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": 3`)), "annotations[0].segmentation: want polygons (a list) or an RLE (an object), got the number 3"},
		{"polygon of strings", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": [[0, 0, 1, 0, 1, 1], ["x"]]`)), "annotations[0].segmentation[1]: want a polygon (a list of numbers), got a list"},
		{"polygon null", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": [null]`)), "annotations[0].segmentation[0]: want a polygon (a list of numbers), got null"},
		{"rle no size", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": {"counts": [12]}`)), "annotations[0].segmentation.size: missing or null"},
		{"rle size 3", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": {"size": [3, 4, 1], "counts": [12]}`)), "annotations[0].segmentation.size: want [height, width], got 3 numbers"},
		{"rle size string", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": {"size": "3x4", "counts": [12]}`)), "annotations[0].segmentation.size: want a list, got JSON string"},
		{"rle size float", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": {"size": [3, 4.5], "counts": [12]}`)), "annotations[0].segmentation.size[1]: want an integer, got the number 4.5"},
		{"rle no counts", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": {"size": [3, 4]}`)), "annotations[0].segmentation.counts: missing or null"},
		{"rle counts bad char", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": {"size": [3, 4], "counts": "6~"}`)), "annotations[0].segmentation.counts: byte 1 ('~') is outside"},
		{"rle counts negative", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": {"size": [3, 4], "counts": [6, -1]}`)), "annotations[0].segmentation.counts: want run lengths (integers 0 to 4294967295): got JSON number -1"},
		{"rle counts object", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": {"size": [3, 4], "counts": {}}`)), "annotations[0].segmentation.counts: want a list of run lengths or a compressed string, got an object"},
		{"category name number", `{"images": [], "categories": [{"id": 1, "name": 1}]}`, "categories[0].name: want a string, got JSON number"},
		{"category no id", `{"images": [], "categories": [{"name": "x"}]}`, "categories[0].id: missing or null"},
		{"info year string", `{"images": [], "info": {"year": "2017"}}`, "info.year: want an integer, got JSON string"},
		{"license id missing", `{"images": [], "licenses": [{"name": "cc"}]}`, "licenses[0].id: missing or null"},
		{"duplicate key", `{"images": [], "images": []}`, "images: duplicate key"},
		{"syntax error", `{"images": [{"id": 1,}]}`, "images[0]: invalid JSON at byte"},
		{"truncated", `{"images": [` + img, "unexpected end of file"},
		{"truncated in key", `{"images": [], "annot`, "unexpected end of file"},
		{"trailing", `{"images": []} {}`, "unexpected an object after the top-level value"},
		{"empty file", ``, "unexpected end of file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.json), "f.json")
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			var pe *PathError
			if !errors.As(err, &pe) || pe.Name != "f.json" {
				t.Fatalf("error %T %v is not a *PathError naming the file", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseTolerates(t *testing.T) {
	tests := []struct{ name, json string }{
		{"unknown keys everywhere", `{"type": "instances", "images": [{"id": 1, "width": 4, "height": 3, "file_name": "a.jpg", "neg_category_ids": [1]}],
			"annotations": [{"id": 5, "image_id": 1, "category_id": 7, "area": 2, "bbox": [0, 0, 1, 2], "num_keypoints": 0, "keypoints": []}],
			"categories": [{"id": 7, "name": "cat", "keypoints": ["nose"], "skeleton": [[1, 2]]}], "extra": {"deep": [1, {"x": null}]}}`},
		{"no annotations or categories (a test split)", `{"images": [` + img + `]}`},
		{"null segmentation", doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": null`))},
		{"null info", `{"info": null, "images": []}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(strings.NewReader(tc.json), "ok.json")
			if err != nil {
				t.Fatal(err)
			}
			if d.Annotations == nil || d.Categories == nil {
				t.Fatal("nil annotations or categories")
			}
			for _, a := range d.Annotations {
				if a.Segmentation != nil {
					t.Fatalf("segmentation %+v, want nil", a.Segmentation)
				}
			}
		})
	}
}

func TestParseResultsErrors(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"object", `{}`, "want a list, got an object"},
		{"no score", `[{"image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 1]}]`, "[0].score: missing or null"},
		{"nothing to evaluate", `[{"image_id": 1, "category_id": 2, "score": 0.5}]`, "[0]: has neither bbox nor segmentation"},
		{"bad counts", `[{"image_id": 1, "category_id": 2, "score": 0.5, "bbox": [0, 0, 1, 1]}, {"image_id": 1, "category_id": 2, "score": 0.5, "segmentation": {"size": [1, 1], "counts": "X"}}]`, "[1].segmentation.counts: compressed counts end inside count 0"},
		{"trailing", `[] []`, "after the top-level value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseResults(strings.NewReader(tc.json), "dt.json")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "dt.json") {
				t.Fatalf("error %v, want one naming dt.json containing %q", err, tc.want)
			}
		})
	}
}
