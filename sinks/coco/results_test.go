package coco

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseResults feeds arbitrary bytes to the result-list parser: it
// must not panic, and a list it accepts must survive Marshal and Parse
// unchanged (counts re-encode to the same runs, numbers to the same
// doubles).
func FuzzParseResults(f *testing.F) {
	for _, s := range []string{
		`[]`,
		`[{"image_id": 1, "category_id": 3, "bbox": [17.57, 101.25, 27.25, 8.92], "score": 0.1099}]`,
		`[{"image_id": 1000, "category_id": 1, "bbox": [83.24, 29.39, 12.15, 38.35], "score": 0.6134, "segmentation": {"size": [118, 146], "counts": "ob9W1_2000000000000000000000Uk5"}}]`,
		`[{"image_id": 2, "category_id": 1, "score": 1, "segmentation": {"size": [2, 2], "counts": [0, 4]}}]`,
		`[{"image_id": 2, "category_id": 1, "score": 1, "segmentation": [[0, 0, 5, 0, 5, 5], [1, 1]]}]`,
		`[{"image_id": 2, "category_id": 1, "score": -0, "bbox": [0, 0, 0, 0], "segmentation": null}]`,
		`[{"image_id": 1, "category_id": 1, "score": 1e308, "bbox": [1, 2, 3, 4], "extra": {"x": [1]}}]`,
		`[{"image_id": 1,`,
		`{"image_id": 1}`,
		`[{"image_id": "1", "category_id": 1, "score": 1, "bbox": [1, 2, 3, 4]}]`,
		`[{"image_id": 1, "category_id": 1, "score": 1, "segmentation": {"size": [2], "counts": "0"}}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseResults(bytes.NewReader(data), "dt.json")
		if err != nil {
			if _, ok := err.(*PathError); !ok {
				t.Fatalf("error %v is a %T, want *PathError", err, err)
			}
			return
		}
		out, err := json.Marshal(res)
		if err != nil {
			t.Fatalf("marshal accepted results: %v", err)
		}
		back, err := ParseResults(bytes.NewReader(out), "again.json")
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(res, back) {
			t.Fatalf("results changed through Marshal and Parse:\n%s", out)
		}
	})
}
