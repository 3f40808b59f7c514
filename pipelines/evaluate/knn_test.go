package evaluate

import (
	"strings"
	"testing"
)

// checkKNNLabels refuses the label sets on which kNN's accuracy says
// nothing about the features, naming the classes, and lets every other
// set through.
func TestCheckKNNLabels(t *testing.T) {
	classes := []string{"cat", "dog", "owl"}
	for _, tc := range []struct {
		name       string
		train, val []int
		want       []string // "" entries: no error
	}{
		{"two classes, every validation class seen", []int{0, 1, 1, 0}, []int{1, 0}, nil},
		{"a class seen in training only", []int{0, 1, 2}, []int{0, 1}, nil},
		{"empty training set: eval.KNN's to refuse", nil, []int{0}, nil},
		{"one class", []int{1, 1, 1}, []int{1, 1}, []string{`every --train /data/train image is of class "dog"`, "100%", "sslight embed"}},
		{"one class, none in validation", []int{2}, []int{0}, []string{`class "owl"`}},
		{"validation classes unseen", []int{0, 1, 0}, []int{2, 0, 2, 2}, []string{`3 --val images are of classes no --train image has ("owl")`}},
	} {
		err := checkKNNLabels(tc.train, tc.val, classes, "/data/train")
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
}
