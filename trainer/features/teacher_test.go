package features

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// writeState writes checkpoint.safetensors as a trainer of an earlier
// release did: every network under its prefix (and a head tensor, which
// the teacher load must leave alone).
func writeState(t *testing.T, dir string, nets map[string]backbone.Backbone) {
	t.Helper()
	f := safetensors.NewFile()
	for prefix, bb := range nets {
		sd := backbone.StateDict(bb)
		for _, name := range sd.Names {
			if err := f.Add(prefix+"backbone."+name, sd.Tensors[name]); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Add(prefix+"head.last_layer.weight", safetensors.Tensor{DType: safetensors.F32, Shape: []int{2, 2}, F32: []float32{1, 2, 3, 4}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.StateFile), f); err != nil {
		t.Fatal(err)
	}
}

// TestLoadCheckpointTeacher loads the teacher of DINO and MoCo
// checkpoints, from teacher_backbone.safetensors and, in a checkpoint
// written before that file existed, from the teacher.backbone.* /
// key.backbone.* entries of checkpoint.safetensors: its features equal
// those of the teacher network the test wrote, run directly, and differ
// from the student's. A SwAV checkpoint's teacher is refused.
func TestLoadCheckpointTeacher(t *testing.T) {
	ctx := context.Background()
	build := func(seed uint64) backbone.Backbone {
		bb, err := backbone.New("resnet18", backbone.Options{Seed: seed, Width: 0.25, SmallImageStem: true})
		if err != nil {
			t.Fatal(err)
		}
		trainBN(bb, seed)
		return bb
	}
	student, teacher := build(9), build(10)
	metaOf := func(method string) checkpoint.Meta {
		m := smallMeta()
		m.Method = method
		return m
	}
	for _, tc := range []struct {
		name, method, from string
		setup              func(dir string)
	}{
		{"DINO teacher file", "DINO", checkpoint.TeacherBackboneFile, func(dir string) {
			if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.TeacherBackboneFile), backbone.StateDict(teacher)); err != nil {
				t.Fatal(err)
			}
		}},
		{"DINO checkpoint of an earlier release", "DINO", "checkpoint.safetensors teacher.backbone.*", func(dir string) {
			writeState(t, dir, map[string]backbone.Backbone{"student.": student, "teacher.": teacher})
		}},
		{"MoCo checkpoint of an earlier release", "MOCO", "checkpoint.safetensors key.backbone.*", func(dir string) {
			writeState(t, dir, map[string]backbone.Backbone{"student.": student, "key.": teacher})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ckpt")
			writeCheckpoint(t, dir, student, metaOf(tc.method))
			tc.setup(dir)
			tm, err := LoadCheckpoint(ctx, dir, checkpoint.Teacher)
			if err != nil {
				t.Fatal(err)
			}
			sm, err := LoadCheckpoint(ctx, dir, checkpoint.Student)
			if err != nil {
				t.Fatal(err)
			}
			if tm.Weights() != checkpoint.Teacher || tm.Info().Weights != "teacher" || sm.Info().Weights != "student" {
				t.Errorf("weights: teacher model says %q (index %q), student model %q", tm.Weights(), tm.Info().Weights, sm.Info().Weights)
			}
			ck, err := checkpoint.LoadBackbone(ctx, dir, checkpoint.Teacher)
			if err != nil || ck.From != tc.from {
				t.Errorf("the teacher came from %q (%v), want %q", ck.From, err, tc.from)
			}
			imgs := views(3, 16, 16, 4)
			got, err := tm.Extract(imgs, 16, 16)
			if err != nil {
				t.Fatal(err)
			}
			stud, err := sm.Extract(imgs, 16, 16)
			if err != nil {
				t.Fatal(err)
			}
			for i, im := range imgs {
				row := got[i*128 : (i+1)*128]
				if r := relDiff(row, direct(t, teacher, im, 16, 16)); r > 1e-5 {
					t.Errorf("image %d: teacher features differ from the teacher network's by %.2g", i, r)
				}
				if r := relDiff(row, stud[i*128:(i+1)*128]); r < 1e-2 {
					t.Errorf("image %d: teacher and student features agree to %.2g: the student was loaded", i, r)
				}
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			method string
			setup  func(dir string)
			is     error
			want   []string
		}{
			{"SwAV has no teacher", "SWAV", func(string) {}, checkpoint.ErrNoTeacher, []string{"SWAV", "one network", "student"}},
			{"no teacher anywhere", "DINO", func(string) {}, checkpoint.ErrUnusable, []string{checkpoint.TeacherBackboneFile, checkpoint.StateFile}},
			{"state without the teacher", "MOCO", func(dir string) {
				writeState(t, dir, map[string]backbone.Backbone{"student.": student})
			}, checkpoint.ErrUnusable, []string{"key.backbone.*", "key encoder"}},
			{"teacher file of another width", "DINO", func(dir string) {
				wide, err := backbone.New("resnet18", backbone.Options{Seed: 1, Width: 0.5, SmallImageStem: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.TeacherBackboneFile), backbone.StateDict(wide)); err != nil {
					t.Fatal(err)
				}
			}, checkpoint.ErrUnusable, []string{checkpoint.TeacherBackboneFile, "does not fit resnet18 width 0.25"}},
		} {
			dir := filepath.Join(t.TempDir(), "ckpt")
			writeCheckpoint(t, dir, student, metaOf(tc.method))
			tc.setup(dir)
			_, err := LoadCheckpoint(ctx, dir, checkpoint.Teacher)
			if !errors.Is(err, tc.is) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.is)
				continue
			}
			for _, w := range append(tc.want, dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not say %q", tc.name, err, w)
				}
			}
			if _, err := LoadCheckpoint(ctx, dir, checkpoint.Student); err != nil {
				t.Errorf("%s: the student no longer loads: %v", tc.name, err)
			}
		}
		if _, err := checkpoint.ParseWeights("ema"); err == nil || !strings.Contains(err.Error(), `"ema"`) {
			t.Errorf("ParseWeights(ema): %v", err)
		}
	})
}
