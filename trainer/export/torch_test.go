package export

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// torchScript runs python/sslight_torch.py's load on each (source,
// weights, input, output) quadruple of its arguments: the one-line load a
// user writes.
const torchScript = `import sys
sys.path.insert(0, "../../python")
import numpy as np, torch
from sslight_torch import load
torch.set_num_threads(1)
args = sys.argv[1:]
for src, weights, x, out in zip(args[0::4], args[1::4], args[2::4], args[3::4]):
    model = load(src, weights=weights)
    with torch.no_grad():
        np.save(out, model(torch.from_numpy(np.load(x))).numpy())
`

// TestSSLightTorchLoad writes checkpoints (backbone.safetensors and
// meta.json, as the trainer does), has python/sslight_torch.py build the
// torch module from meta.json alone and load the weights strictly, and
// expects sslight's embedding within 1e-4 relative. The same for files of
// `export --format safetensors` (student and teacher), which carry the
// architecture in their metadata, and for the teacher of a checkpoint
// folder, read from teacher_backbone.safetensors or, without that file,
// from checkpoint.safetensors.
func TestSSLightTorchLoad(t *testing.T) {
	needPython(t, "numpy", "torch", "torchvision")
	root := t.TempDir()
	type source struct{ name, path, weights string }
	var args []string
	want := map[string][]float32{}
	for i, tc := range []struct {
		name, preset string
		sets         map[string]string
		size         int
		teacher      bool
		long         bool // skipped with -short
	}{
		{"resnet18-quarter-smallstem", "dino_fmnist_sslight", dinoHead, 32, true, false},
		{"resnet50", "dino_cnn_sslight", sets(dinoHead, map[string]string{"MODEL.BACKBONE_ARCH": "resnet50", "MODEL.WIDTH": "0.5"}), 64, false, true},
		{"mobilenet_v2", "dino_cnn_sslight", dinoHead, 64, false, false},
		{"mobilenet_v2-half-smallstem", "moco_cnn_sslight", sets(mocoHead, map[string]string{"MODEL.WIDTH": "0.5", "MODEL.SMALL_IMAGE_STEM": "true"}), 32, true, false},
		{"vit_tiny16", "dino_vit_sslight", dinoHead, 48, true, false},
		{"vit_tiny32-224", "dino_vit_sslight", sets(dinoHead, map[string]string{"VIT.PATCH_SIZE": "32"}), 224, false, true},
		{"vit_small16", "dino_vit_sslight", sets(dinoHead, map[string]string{"MODEL.BACKBONE_ARCH": "vit_small"}), 32, false, true},
	} {
		if tc.long && testing.Short() {
			continue
		}
		cfg := testConfig(t, tc.preset, tc.sets)
		c := writeCkpt(t, filepath.Join(root, tc.name), cfg, uint64(40+i), tc.teacher)
		mean, std := meanStd(cfg)
		x := photos(t, 2, tc.size, mean, std)
		xPath := filepath.Join(root, tc.name+".x.npy")
		writeNPY(t, xPath, []int{2, 3, tc.size, tc.size}, x)
		emb, _ := forward(t, c.student, x, 2, tc.size)
		// The checkpoint folder itself, and the pretrain --out above it.
		sources := []source{{tc.name + "/checkpoint", c.dir, WeightsStudent}, {tc.name + "/out", filepath.Join(root, tc.name), WeightsStudent}}
		want[tc.name+"/checkpoint"], want[tc.name+"/out"] = emb, emb
		if tc.teacher {
			for _, w := range []string{WeightsStudent, WeightsTeacher} {
				out := filepath.Join(root, tc.name+"."+w+".safetensors")
				if _, err := Run(context.Background(), Options{Checkpoint: c.dir, Format: FormatSafetensors, Weights: w, WithHead: true, Out: out}); err != nil {
					t.Fatal(err)
				}
				sources = append(sources, source{tc.name + "/" + w + ".safetensors", out, WeightsStudent})
				want[tc.name+"/"+w+".safetensors"] = emb
				if w == WeightsTeacher {
					want[tc.name+"/"+w+".safetensors"], _ = forward(t, c.teacher, x, 2, tc.size)
				}
			}
			// The checkpoint's teacher: from checkpoint.safetensors (an
			// older checkpoint: writeCkpt writes no teacher file), and from
			// teacher_backbone.safetensors as the trainer writes it now.
			withFile := filepath.Join(root, tc.name+"-teacher-file")
			if err := os.CopyFS(withFile, os.DirFS(c.dir)); err != nil {
				t.Fatal(err)
			}
			if err := safetensors.WriteFile(filepath.Join(withFile, checkpoint.TeacherBackboneFile), backbone.StateDict(c.teacher)); err != nil {
				t.Fatal(err)
			}
			temb, _ := forward(t, c.teacher, x, 2, tc.size)
			sources = append(sources, source{tc.name + "/teacher-from-state", c.dir, WeightsTeacher}, source{tc.name + "/teacher-file", withFile, WeightsTeacher})
			want[tc.name+"/teacher-from-state"], want[tc.name+"/teacher-file"] = temb, temb
		}
		for _, s := range sources {
			args = append(args, s.path, s.weights, xPath, filepath.Join(root, strings.ReplaceAll(s.name, "/", "_")+".torch.npy"))
		}
	}
	cmd := exec.Command(python, append([]string{"-c", torchScript}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sslight_torch.load: %v\n%s", err, out)
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		emb := want[name]
		f, err := os.Open(filepath.Join(root, strings.ReplaceAll(name, "/", "_")+".torch.npy"))
		if err != nil {
			t.Fatal(err)
		}
		shape, got, err := npy.ReadFloat32(f, nil)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(emb) || shape[0] != 2 {
			t.Fatalf("%s: torch gives %v, sslight %d values", name, shape, len(emb))
		}
		rel := relative(got, emb)
		if rel > 1e-4 {
			t.Errorf("%s: torch's embedding differs from sslight's by %.3g relative, want ≤ 1e-4", name, rel)
		}
		t.Logf("%-42s torch vs sslight, relative %.2g", name, rel)
	}
}

// relative is max |a − b| / max |b|.
func relative(a, b []float32) float64 {
	var d, s float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = max(s, math.Abs(float64(b[i])))
	}
	if s == 0 {
		return d
	}
	return d / s
}
