package trainer

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// checkTeacherFile checks the teacher_backbone.safetensors of a trained
// checkpoint against its checkpoint.safetensors: for DINO and MoCo it
// holds exactly the teacher's (key encoder's) backbone tensors, under the
// names of the student's backbone.safetensors, and differs from the
// student after training; checkpoint.LoadBackbone reads it, and reads the
// same tensors from checkpoint.safetensors once the file is gone (a
// checkpoint of an earlier release). SwAV writes no teacher file and its
// teacher is refused.
func checkTeacherFile(t *testing.T, dir, method string) {
	t.Helper()
	ctx := context.Background()
	teacherPath := filepath.Join(dir, checkpoint.TeacherBackboneFile)
	prefix := checkpoint.TeacherPrefix(method)
	if prefix == "" {
		if _, err := os.Stat(teacherPath); !os.IsNotExist(err) {
			t.Errorf("%s: a %s checkpoint has %s (%v)", dir, method, checkpoint.TeacherBackboneFile, err)
		}
		if _, err := checkpoint.LoadBackbone(ctx, dir, checkpoint.Teacher); !errors.Is(err, checkpoint.ErrNoTeacher) {
			t.Errorf("%s: loading the teacher of a %s checkpoint: err %v, want ErrNoTeacher", dir, method, err)
		}
		return
	}
	state, err := safetensors.ReadFile(filepath.Join(dir, checkpoint.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	student, err := safetensors.ReadFile(filepath.Join(dir, checkpoint.BackboneFile))
	if err != nil {
		t.Fatal(err)
	}
	teacher, err := safetensors.ReadFile(teacherPath)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(teacher.Names, student.Names) {
		t.Fatalf("%s names %v, %s names %v", checkpoint.TeacherBackboneFile, teacher.Names, checkpoint.BackboneFile, student.Names)
	}
	if teacher.Metadata["weights"] != "teacher" || teacher.Metadata["arch"] != student.Metadata["arch"] {
		t.Errorf("%s metadata %v (student's %v)", checkpoint.TeacherBackboneFile, teacher.Metadata, student.Metadata)
	}
	differs := false
	for _, name := range teacher.Names {
		got, want := teacher.Tensors[name], state.Tensors[prefix+"backbone."+name]
		if !sameTensor(got, want) {
			t.Fatalf("%s %s differs from %s %sbackbone.%s", checkpoint.TeacherBackboneFile, name, checkpoint.StateFile, prefix, name)
		}
		differs = differs || !sameTensor(got, student.Tensors[name])
	}
	if !differs {
		t.Errorf("%s: the %s's backbone equals the student's after training", dir, checkpoint.TeacherName(method))
	}

	fromFile, err := checkpoint.LoadBackbone(ctx, dir, checkpoint.Teacher)
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(t.TempDir(), "old")
	if err := os.CopyFS(old, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(old, checkpoint.TeacherBackboneFile)); err != nil {
		t.Fatal(err)
	}
	fromState, err := checkpoint.LoadBackbone(ctx, old, checkpoint.Teacher)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.From != checkpoint.TeacherBackboneFile || fromState.From != checkpoint.StateFile+" "+prefix+"backbone.*" ||
		fromFile.Weights != checkpoint.Teacher || fromState.Weights != checkpoint.Teacher {
		t.Errorf("teacher loaded from %q (%s) and, without the file, from %q (%s)", fromFile.From, fromFile.Weights, fromState.From, fromState.Weights)
	}
	a, b := fromFile.Net.Entries(), fromState.Net.Entries()
	for i := range a {
		if a[i].Count != nil {
			if *a[i].Count != *b[i].Count {
				t.Errorf("%s: %d from the file, %d from the state", a[i].Name, *a[i].Count, *b[i].Count)
			}
			continue
		}
		if !slices.Equal(a[i].F32, b[i].F32) {
			t.Fatalf("%s differs between the teacher file and the state's entries", a[i].Name)
		}
	}
}

// sameTensor says whether two tensors hold the same dtype, shape and bits.
func sameTensor(a, b safetensors.Tensor) bool {
	if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !slices.Equal(a.I64, b.I64) || len(a.F32) != len(b.F32) {
		return false
	}
	for i := range a.F32 {
		if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
			return false
		}
	}
	return true
}
