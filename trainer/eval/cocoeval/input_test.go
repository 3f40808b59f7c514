package cocoeval

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/coco"
)

const inputGT = `{"images": [{"id": 1, "width": 30, "height": 20, "file_name": "a.jpg"}, {"id": 2, "width": 30, "height": 20, "file_name": "b.jpg"}],
	"categories": [{"id": 1, "name": "one"}],
	"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]}]}`

// wantPathError checks err is a *coco.PathError naming the file, the
// JSON path and a message containing msg.
func wantPathError(t *testing.T, err error, file, path, msg string) {
	t.Helper()
	var pe *coco.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want a *coco.PathError", err, err)
	}
	if pe.Name != file || pe.Path != path || !strings.Contains(pe.Msg, msg) {
		t.Fatalf("err = %q (file %q, path %q), want file %q, path %q, message containing %q", err, pe.Name, pe.Path, file, path, msg)
	}
}

func TestResultErrors(t *testing.T) {
	tests := []struct {
		name, dt   string
		typ        IoUType
		path, want string
	}{
		{"invalid JSON", `[{"image_id": 1,`, IoUBBox, "[0]", "unexpected end"},
		{"not a list", `{"image_id": 1}`, IoUBBox, "", "want a list"},
		{"missing score", `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]`, IoUBBox, "[0].score", "missing"},
		{"missing image_id", `[{"category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]`, IoUBBox, "[0].image_id", "missing"},
		{"unknown image", `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}, {"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]`,
			IoUBBox, "[1].image_id", "image 99 is not in the ground truth gt.json"},
		{"negative width", `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, -3, 1], "score": 1}]`, IoUBBox, "[0].bbox", "negative size -3x1"},
		{"negative height in segm", `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 3, -1], "score": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]}]`, IoUSegm, "[0].bbox", "negative size"},
		{"bbox of 3 numbers", `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 3], "score": 1}]`, IoUBBox, "[0].bbox", "want 4 numbers"},
		{"later result without box", `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}, {"image_id": 1, "category_id": 1, "score": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]}]`,
			IoUBBox, "[1]", "has no bbox"},
		{"segm without mask", `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]`, IoUSegm, "[0]", "has no segmentation"},
		{"mask of the wrong size", `[{"image_id": 2, "category_id": 1, "score": 1, "segmentation": {"size": [30, 20], "counts": "0` + "`" + `9"}}]`,
			IoUSegm, "[0].segmentation", "size [30, 20] differs from image 2's [20, 30]"},
		{"runs not covering the mask", `[{"image_id": 1, "category_id": 1, "score": 1, "segmentation": {"size": [20, 30], "counts": [5, 5]}}]`,
			IoUSegm, "[0].segmentation", "runs cover 10 pixels"},
		{"bad compressed counts", `[{"image_id": 1, "category_id": 1, "score": 1, "segmentation": {"size": [20, 30], "counts": "~~"}}]`,
			IoUSegm, "[0].segmentation.counts", "outside the compressed counts alphabet"},
		{"short polygon", `[{"image_id": 1, "category_id": 1, "score": 1, "segmentation": [[0, 0, 5, 5]]}]`, IoUSegm, "[0].segmentation", "polygon 0 has 4 coordinates"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gt, err := LoadGroundTruth(strings.NewReader(inputGT), "gt.json")
			if err != nil {
				t.Fatal(err)
			}
			_, err = ReadResults(strings.NewReader(tc.dt), "dt.json", gt, tc.typ)
			wantPathError(t, err, "dt.json", tc.path, tc.want)
		})
	}
}

func TestGroundTruthErrors(t *testing.T) {
	img := func(id, w, h string) string {
		return `{"id": ` + id + `, "width": ` + w + `, "height": ` + h + `, "file_name": "x` + id + `.jpg"}`
	}
	ann := func(id, box string) string {
		return `{"id": ` + id + `, "image_id": 1, "category_id": 1, "bbox": ` + box + `, "area": 4}`
	}
	doc := func(images, cats, anns string) string {
		return `{"images": [` + images + `], "categories": [` + cats + `], "annotations": [` + anns + `]}`
	}
	cat := `{"id": 1, "name": "one"}`
	tests := []struct {
		name, gt   string
		path, want string
	}{
		{"invalid JSON", `{"images": [`, "images", "unexpected end"},
		{"duplicate image", doc(img("1", "5", "5")+", "+img("1", "6", "6"), cat, ""), "images[1].id", "duplicate image id 1 (first at images[0])"},
		{"zero width", doc(img("1", "0", "5"), cat, ""), "images[0]", "width and height must be positive, got 0x5"},
		{"duplicate category", doc(img("1", "5", "5"), cat+", "+cat, ""), "categories[1].id", "duplicate category id 1"},
		{"duplicate annotation", doc(img("1", "5", "5"), cat, ann("3", "[0, 0, 2, 2]")+", "+ann("3", "[0, 0, 2, 2]")), "annotations[1].id", "duplicate annotation id 3"},
		{"negative box", doc(img("1", "5", "5"), cat, ann("3", "[0, 0, 2, -2]")), "annotations[0].bbox", "negative size 2x-2"},
		{"missing area", doc(img("1", "5", "5"), cat, `{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}`), "annotations[0].area", "missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadGroundTruth(strings.NewReader(tc.gt), "gt.json")
			wantPathError(t, err, "gt.json", tc.path, tc.want)
		})
	}
}

func TestGroundTruthIgnoresUnlistedReferences(t *testing.T) {
	// pycocotools only looks at annotations of listed images and
	// categories; the others are counted, not refused.
	gt, err := LoadGroundTruth(strings.NewReader(`{"images": [{"id": 1, "width": 5, "height": 5, "file_name": "a.jpg"}],
		"categories": [{"id": 1, "name": "one"}],
		"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1},
		                {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1},
		                {"id": 3, "image_id": 1, "category_id": 5, "bbox": [0, 0, 1, 1], "area": 1}]}`), "gt.json")
	if err != nil {
		t.Fatal(err)
	}
	if gt.NumAnnotations() != 1 || gt.IgnoredAnnotations() != 2 {
		t.Errorf("annotations %d, ignored %d; want 1, 2", gt.NumAnnotations(), gt.IgnoredAnnotations())
	}
}

func TestGroundTruthMaskErrors(t *testing.T) {
	// Segmentations are only checked by segm evaluation; a box-only file
	// serves bbox evaluation.
	tests := []struct {
		name, seg string
		want      string
	}{
		{"missing", ``, "missing"},
		{"empty list", `, "segmentation": []`, "empty polygon list"},
		{"two points", `, "segmentation": [[0, 0, 3, 3]]`, "polygon 0 has 4 coordinates"},
		{"far outside", `, "segmentation": [[0, 0, 3, 3, 1e7, 0]]`, "coordinate 4 is 1e+07"},
		{"RLE size", `, "segmentation": {"size": [4, 5], "counts": [20]}`, "size [4, 5] differs from image 1's [5, 4]"},
		{"RLE runs", `, "segmentation": {"size": [5, 4], "counts": [3, 3]}`, "runs cover 6 pixels, image 1 has 20"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gtJSON := `{"images": [{"id": 1, "width": 4, "height": 5, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "one"}],
				"annotations": [{"id": 8, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4` + tc.seg + `}]}`
			for _, typ := range []IoUType{IoUBBox, IoUSegm} {
				gt, dt := load(t, gtJSON, `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "score": 1, "segmentation": [[0, 0, 2, 0, 2, 2]]}]`, typ)
				_, err := Evaluate(context.Background(), gt, dt, DefaultParams(typ))
				if typ == IoUBBox {
					if err != nil {
						t.Errorf("bbox evaluation: %v", err)
					}
					continue
				}
				wantPathError(t, err, "gt.json", "annotations[0].segmentation", tc.want)
				if !strings.Contains(err.Error(), "annotation 8") {
					t.Errorf("error %q does not name annotation 8", err)
				}
			}
		})
	}
}

func TestParseIoUType(t *testing.T) {
	for _, s := range []string{"bbox", "segm"} {
		if got, err := ParseIoUType(s); err != nil || string(got) != s {
			t.Errorf("ParseIoUType(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "keypoints", "BBOX"} {
		if _, err := ParseIoUType(s); err == nil {
			t.Errorf("ParseIoUType(%q): no error", s)
		}
	}
}
