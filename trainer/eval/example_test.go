package eval_test

import (
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/trainer/eval"
)

func ExampleKNN() {
	// Two classes on two axes; the test points lean towards one each.
	train := eval.Features{Dim: 2, X: []float32{1, 0, 2, 0.1, 0, 1, 0.1, 3}, Labels: []int{0, 0, 1, 1}}
	test := eval.Features{Dim: 2, X: []float32{5, 1, 1, 4}, Labels: []int{0, 1}}
	res, err := eval.KNN(train, test, 2, []int{1, 3}, eval.DefaultKNNTemperature)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res {
		fmt.Printf("k=%d top-1 %.0f%%\n", r.K, r.Top1)
	}
	// Output:
	// k=1 top-1 100%
	// k=3 top-1 100%
}

func ExampleParseSubsetList() {
	names, err := eval.ParseSubsetList(strings.NewReader("n01440764_10026.JPEG\nn01440764_10027.JPEG\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	paths := []string{"train/n01440764/n01440764_10027.JPEG", "train/n01440764/n01440764_10026.JPEG", "train/n01440764/n01440764_10029.JPEG"}
	idx, err := eval.MatchSubset(names, paths)
	fmt.Println(idx, err)
	// Output: [0 1] <nil>
}

func ExampleStratifiedSubset() {
	labels := []int{0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2}
	idx, err := eval.StratifiedSubset(labels, 3, 0.4, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	counts := make([]int, 3)
	for _, i := range idx {
		counts[labels[i]]++
	}
	fmt.Println("per class:", counts)
	// Output: per class: [2 2 1]
}
