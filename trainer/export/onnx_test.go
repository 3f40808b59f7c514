package export

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/onnx"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// The head sizes of the test configs: small, so the checks stay fast.
var (
	dinoHead   = map[string]string{"DINOHead.HIDDEN_SIZE": "64", "DINOHead.BOTTLENECK_DIM": "32", "DINOHead.OUTPUT_DIM": "96"}
	mocoHead   = map[string]string{"MOCO.HIDDEN_SIZE": "48", "MOCO.OUTPUT_DIM": "24", "MOCO.USE_BN_IN_HEAD": "true"}
	swavHead   = map[string]string{"SWAV.HIDDEN_SIZE": "48", "SWAV.OUTPUT_DIM": "24", "SWAV.NMB_PROTOTYPES": "40"}
	fmnistNorm = map[string]string{"DATA.MEAN": "[0.2860, 0.2860, 0.2860]", "DATA.STD": "[0.3530, 0.3530, 0.3530]"}
)

func sets(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// onnxCase is one export checked against OpenCV.
type onnxCase struct {
	name    string
	preset  string
	sets    map[string]string
	size    int // 0: the config's GLOBAL_CROP_SIZE
	batch   int // 0: dynamic
	fold    bool
	head    bool
	weights string
	fmnist  bool // Fashion-MNIST images instead of the photos
	long    bool // skipped with -short
}

// onnxCases cover every architecture and variant sslight trains: ResNet
// 18/34/50, the demo's quarter-width small-stem ResNet-18, MobileNetV2 at
// width 1 and 0.5, ViT-T/16, ViT-T/32 and ViT-S/16 (off and on the
// training grid), BatchNorm folded and not, fixed and dynamic batch, each
// method's head and both teachers.
var onnxCases = []onnxCase{
	{name: "resnet18", preset: "dino_cnn_sslight", sets: sets(dinoHead, map[string]string{"MODEL.BACKBONE_ARCH": "resnet18"}),
		size: 64, fold: true, head: true},
	{name: "resnet18-quarter-smallstem", preset: "dino_fmnist_sslight", sets: dinoHead, size: 32, batch: 2, fmnist: true},
	{name: "resnet18-quarter-smallstem-teacher", preset: "dino_fmnist_sslight", sets: dinoHead, size: 28, fold: true,
		head: true, weights: WeightsTeacher, fmnist: true},
	{name: "resnet34", preset: "dino_cnn_sslight", sets: sets(dinoHead, map[string]string{"MODEL.BACKBONE_ARCH": "resnet34"}),
		size: 32, batch: 2, fold: true, long: true},
	{name: "resnet50", preset: "moco_cnn_sslight", sets: sets(mocoHead, map[string]string{"MODEL.BACKBONE_ARCH": "resnet50"}),
		size: 32, head: true, long: true},
	{name: "mobilenet_v2", preset: "swav_cnn_sslight", sets: sets(swavHead, map[string]string{}), size: 48, fold: true, head: true},
	{name: "mobilenet_v2-half", preset: "moco_cnn_sslight", sets: sets(mocoHead, map[string]string{"MODEL.WIDTH": "0.5"}),
		size: 64, batch: 2, weights: WeightsTeacher, head: true},
	{name: "mobilenet_v2-half-smallstem", preset: "dino_cnn_sslight", sets: sets(dinoHead, fmnistNorm,
		map[string]string{"MODEL.WIDTH": "0.5", "MODEL.SMALL_IMAGE_STEM": "true", "MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE": "32"}),
		fold: true, fmnist: true},
	{name: "vit_tiny16", preset: "dino_vit_sslight", sets: dinoHead, size: 48, fold: true, head: true},
	{name: "vit_tiny16-teacher", preset: "dino_vit_sslight", sets: dinoHead, size: 32, batch: 2, weights: WeightsTeacher},
	{name: "vit_tiny32-224", preset: "dino_vit_sslight", sets: sets(dinoHead, map[string]string{"VIT.PATCH_SIZE": "32"}),
		size: 224, batch: 2, head: true, long: true},
	{name: "vit_tiny32", preset: "dino_vit_sslight", sets: sets(dinoHead, map[string]string{"VIT.PATCH_SIZE": "32"}), size: 64},
	{name: "vit_small16", preset: "dino_vit_sslight", sets: sets(dinoHead, map[string]string{"MODEL.BACKBONE_ARCH": "vit_small"}),
		size: 32, long: true},
}

// TestONNXMatchesOpenCV exports each case from a checkpoint written here,
// has python/check_onnx.py load it with ONNX's checker and strict shape
// inference and run it with OpenCV's DNN module on real images
// (testdata/photos, testdata/fmnist-mini), and expects every output within
// 1e-4 relative (max |a − b| / max |b|) of sslight's own eval-mode forward
// pass of the networks the checkpoint was written from.
func TestONNXMatchesOpenCV(t *testing.T) {
	needPython(t, "numpy", "onnx", "cv2")
	ctx := context.Background()
	root := t.TempDir()
	var cases []pyCase
	for i, tc := range onnxCases {
		if tc.long && testing.Short() {
			continue
		}
		cfg := testConfig(t, tc.preset, tc.sets)
		c := writeCkpt(t, filepath.Join(root, tc.name), cfg, uint64(10+i), tc.head || tc.weights == WeightsTeacher)
		o := Options{Checkpoint: filepath.Join(root, tc.name), Weights: tc.weights, WithHead: tc.head, Batch: tc.batch,
			Size: tc.size, FoldBN: tc.fold, Out: filepath.Join(root, tc.name+".onnx")}
		sum, err := Run(ctx, o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		size := sum.Size
		if tc.size == 0 && size != cfg.MultiViewsTransforms.GlobalCropSize {
			t.Errorf("%s: size %d, want the config's %d", tc.name, size, cfg.MultiViewsTransforms.GlobalCropSize)
		}
		checkSummary(t, tc, sum, c)
		mean, std := meanStd(cfg)
		const n = 2
		var x []float32
		if tc.fmnist {
			x = fmnist(t, n, size, mean, std)
		} else {
			x = photos(t, n, size, mean, std)
		}
		bb, prefix := c.student, "student."
		if tc.weights == WeightsTeacher {
			bb, prefix = c.teacher, checkpoint.TeacherPrefix(cfg.SSLMethod)
		}
		emb, fmap := forward(t, bb, x, n, size)
		outs := map[string][]float32{EmbeddingName: emb}
		if fmap != nil {
			outs[FeatureMapName] = fmap
		}
		if tc.head {
			for k, v := range headForward(t, c.heads[prefix+"head."], emb, n, bb.EmbedDim()) {
				outs[k] = v
			}
		}
		pc := pyCase{Name: tc.name, Model: o.Out, Input: filepath.Join(root, tc.name+".x.npy"), Expected: map[string]string{}, Dynamic: tc.batch == 0}
		writeNPY(t, pc.Input, []int{n, 3, size, size}, x)
		for _, out := range sum.Outputs {
			v, ok := outs[out.Name]
			if !ok {
				t.Fatalf("%s: output %s has no expected values", tc.name, out.Name)
			}
			shape := []int{n}
			for _, d := range out.Shape[1:] {
				var k int
				fmt.Sscan(d, &k)
				shape = append(shape, k)
			}
			path := filepath.Join(root, tc.name+"."+out.Name+".npy")
			writeNPY(t, path, shape, v)
			pc.Expected[out.Name] = path
		}
		if len(pc.Expected) != len(outs) {
			t.Errorf("%s: outputs %v, want %d", tc.name, sum.Outputs, len(outs))
		}
		cases = append(cases, pc)
	}
	res, versions := runCheck(t, root, cases)
	t.Logf("checked with onnx %s, OpenCV %s", versions["onnx"], versions["opencv"])
	for _, pc := range cases {
		r, ok := res[pc.Name]
		switch {
		case !ok:
			t.Errorf("%s: no result", pc.Name)
			continue
		case r.Error != "":
			t.Errorf("%s: %s", pc.Name, r.Error)
			continue
		case r.Checker != "ok" || r.ShapeInference != "ok":
			t.Errorf("%s: checker %q, shape inference %q", pc.Name, r.Checker, r.ShapeInference)
		}
		var report []string
		for _, name := range sortedKeys(pc.Expected) {
			rel, ok := r.Relative[name]
			if !ok || rel > 1e-4 {
				t.Errorf("%s: OpenCV's %s differs from sslight's by %.3g relative (ok %v), want ≤ 1e-4", pc.Name, name, rel, ok)
			}
			report = append(report, fmt.Sprintf("%s %.2g", name, rel))
			if pc.Dynamic {
				if rel1, ok := r.RelativeBatch1[name]; !ok || rel1 > 1e-4 {
					t.Errorf("%s: batch of 1 (dynamic batch): %s differs by %.3g (ok %v)", pc.Name, name, rel1, ok)
				}
			}
		}
		t.Logf("%-36s OpenCV vs sslight, relative: %s", pc.Name, strings.Join(report, ", "))
	}
}

// checkSummary checks what Run reports and what the file's metadata says.
func checkSummary(t *testing.T, tc onnxCase, sum *Summary, c *ckpt) {
	t.Helper()
	raw, err := storage.ReadFile(context.Background(), sum.Out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	md := onnx.Metadata(m)
	weights := tc.weights
	if weights == "" {
		weights = WeightsStudent
	}
	batch := "N"
	if tc.batch > 0 {
		batch = fmt.Sprint(tc.batch)
	}
	for k, v := range map[string]string{"arch": c.cfg.Model.BackboneArch, "weights": weights, "checkpoint_step": "12",
		"config_hash": c.cfg.Hash(), "method": c.cfg.SSLMethod, "batch": batch, "input_size": fmt.Sprint(sum.Size),
		"fold_bn": fmt.Sprint(tc.fold), "with_head": fmt.Sprint(tc.head), "embed_dim": fmt.Sprint(c.student.EmbedDim()),
		"small_image_stem": fmt.Sprint(c.cfg.Model.SmallImageStem)} {
		if md[k] != v {
			t.Errorf("%s: metadata %s = %q, want %q", tc.name, k, md[k], v)
		}
	}
	if md["normalize_mean"] == "" || md["normalize_std"] == "" || md["sslight_version"] == "" {
		t.Errorf("%s: metadata %v lacks the normalisation or the version", tc.name, md)
	}
	if m.GetOpsetImport()[0].GetVersion() != Opset || m.GetIrVersion() != onnx.IRVersion {
		t.Errorf("%s: opset %v, IR %d", tc.name, m.GetOpsetImport(), m.GetIrVersion())
	}
	ops := map[string]int{}
	for _, n := range m.GetGraph().GetNode() {
		ops[n.GetOpType()]++
	}
	if ops["Identity"] > 0 || ops["Clip"] > 0 || ops["LayerNormalization"] > 0 {
		t.Errorf("%s: ops %v: want no Identity, Clip or LayerNormalization (OpenCV 4.6)", tc.name, ops)
	}
	if isViT := strings.HasPrefix(c.cfg.Model.BackboneArch, "vit"); !isViT {
		if got := ops["BatchNormalization"]; tc.fold != (got == 0) {
			t.Errorf("%s: %d BatchNormalization nodes with fold %v", tc.name, got, tc.fold)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
