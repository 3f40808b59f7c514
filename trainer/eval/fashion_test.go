package eval

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sslight-go/sslight/sinks/idx"
)

// fashionDir is where the Debian package dataset-fashion-mnist installs
// Fashion-MNIST (real data: 60,000 train and 10,000 test 28×28 images).
const fashionDir = "/usr/share/datasets/fashion-mnist"

// fashionCache keeps the decoded splits: the train split is 188 MB of
// float32 and two tests read it.
var fashionCache sync.Map // "split/stride" → Features

// loadFashion reads every stride-th sample of a Fashion-MNIST split
// ("train" or "t10k") as raw-pixel features in [0, 1] (torchvision's
// ToTensor scaling), or skips the test when the data set is not installed.
func loadFashion(tb testing.TB, split string, stride int) Features {
	tb.Helper()
	key := fmt.Sprintf("%s/%d", split, stride)
	if f, ok := fashionCache.Load(key); ok {
		return f.(Features)
	}
	images := filepath.Join(fashionDir, split+"-images-idx3-ubyte.gz")
	labels := filepath.Join(fashionDir, split+"-labels-idx1-ubyte.gz")
	if _, err := os.Stat(images); errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("Fashion-MNIST not installed at %s (Debian package dataset-fashion-mnist): skipping the raw-pixel baselines", fashionDir)
	}
	fi, err := os.Open(images)
	if err != nil {
		tb.Fatal(err)
	}
	defer fi.Close()
	img, err := idx.ReadImages(fi, images)
	if err != nil {
		tb.Fatal(err)
	}
	fl, err := os.Open(labels)
	if err != nil {
		tb.Fatal(err)
	}
	defer fl.Close()
	lab, err := idx.ReadLabels(fl, labels)
	if err != nil {
		tb.Fatal(err)
	}
	if len(lab) != img.N {
		tb.Fatalf("%s: %d images, %d labels", split, img.N, len(lab))
	}
	n := (img.N + stride - 1) / stride
	d := img.H * img.W
	f := Features{Dim: d, X: make([]float32, n*d), Labels: make([]int, n)}
	for i := range n {
		for j, p := range img.Record(i * stride) {
			f.X[i*d+j] = float32(p) / 255
		}
		f.Labels[i] = int(lab[i*stride])
	}
	fashionCache.Store(key, f)
	return f
}

// fullEnv makes the Fashion-MNIST tests use the whole test split (10,000
// images; the kNN search then takes about 1.5 minutes on 2 cores) and
// check the published figures to a tenth of a point.
const fullEnv = "SSLIGHT_EVAL_FULL"

// TestFashionMNISTLinear trains the fast linear probe on Fashion-MNIST's
// raw pixels (all 60,000 train images, all 10,000 test images) and checks
// it against the published raw-pixel linear baseline, 84.0% top-1 (the
// issue's reference figure). Default settings but 10 epochs instead of 30 keep it to a few
// seconds; it reached 84.35% when written (30 epochs: 83.83%, logistic
// regression without regularisation overfits a little). The accepted range
// is ±1 point around 84.0: the probe is deterministic, so the range only
// allows for solver differences from the reference, not for noise.
func TestFashionMNISTLinear(t *testing.T) {
	train := loadFashion(t, "train", 1)
	test := loadFashion(t, "t10k", 1)
	cfg := DefaultLinearConfig()
	cfg.Epochs = 10
	r, err := Linear(train, test, 10, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Fashion-MNIST raw pixels, linear probe (%d epochs): top-1 %.2f%%, top-5 %.2f%%, train loss %.4f",
		cfg.Epochs, r.Top1, r.Top5, r.TrainLoss)
	if r.Top1 < 83 || r.Top1 > 85 {
		t.Errorf("top-1 %.2f%%, want 84.0 ± 1 (published raw-pixel linear baseline)", r.Top1)
	}
	if !r.HasTop5 || r.Top5 < 99 {
		t.Errorf("top-5 %.2f%% (HasTop5 %v), want ≥ 99", r.Top5, r.HasTop5)
	}
}

// TestFashionMNISTKNN runs DINO's 20-NN (T = 0.07) on Fashion-MNIST's raw
// pixels against the published raw-pixel kNN baseline, 84.6% top-1. The
// search costs 60,000 × test-size dot products of 784 values, so by default
// it scores every 20th test image (500; about 3–5 s on 2 cores) and accepts
// ±3 points, two binomial standard errors at n = 500 (it scored 83.4% when
// written). With SSLIGHT_EVAL_FULL=1 it scores all 10,000 and accepts ±0.2
// (it scored 84.59%, and 85.59% at k = 10).
func TestFashionMNISTKNN(t *testing.T) {
	stride, tol := 20, 3.0
	if os.Getenv(fullEnv) != "" {
		stride, tol = 1, 0.2
	}
	train := loadFashion(t, "train", 1)
	test := loadFashion(t, "t10k", stride)
	r, err := KNN(train, test, 10, []int{20}, DefaultKNNTemperature)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Fashion-MNIST raw pixels, 20-NN on %d test images: top-1 %.2f%%, top-5 %.2f%%", test.Len(), r[0].Top1, r[0].Top5)
	if math.Abs(r[0].Top1-84.6) > tol {
		t.Errorf("top-1 %.2f%%, want 84.6 ± %.1f (published raw-pixel kNN baseline)", r[0].Top1, tol)
	}
}
