package optim

import (
	"errors"
	"testing"
)

func TestEMAUpdate(t *testing.T) {
	tests := []struct {
		name             string
		teacher, student []float32
		m                float64
		want             []float64
	}{
		{"half way", []float32{1, 2, -4}, []float32{3, 4, 0}, 0.5, []float64{2, 3, -2}},
		{"momentum 1 keeps the teacher", []float32{1, -2}, []float32{5, 5}, 1, []float64{1, -2}},
		{"momentum 0 copies the student", []float32{1, -2}, []float32{5, 6}, 0, []float64{5, 6}},
		// 0.996·1 + 0.004·0: float32(0.996).
		{"reference momentum", []float32{1, 0}, []float32{0, 1}, 0.996, []float64{float64(float32(0.996)), float64(float32(0.004))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			teacher := append([]float32(nil), tc.teacher...)
			if err := EMAUpdate(teacher, tc.student, tc.m); err != nil {
				t.Fatal(err)
			}
			checkNear(t, "teacher", teacher, tc.want, 0)
		})
	}
}

func TestEMAErrors(t *testing.T) {
	if err := EMAUpdate(make([]float32, 2), make([]float32, 3), 0.9); !errors.Is(err, ErrShape) {
		t.Errorf("length mismatch: %v", err)
	}
	a := param("teacher.a", []float32{1, 1})
	b := param("teacher.b", []float32{1, 1})
	sa := param("student.a", []float32{0, 0})
	sb := param("student.b", []float32{0, 0, 0})
	if err := EMAParams([]*Param{a, b}, []*Param{sa}, 0.5); !errors.Is(err, ErrShape) {
		t.Errorf("count mismatch: %v", err)
	}
	// A size mismatch in the second pair leaves the first pair untouched.
	if err := EMAParams([]*Param{a, b}, []*Param{sa, sb}, 0.5); !errors.Is(err, ErrShape) {
		t.Errorf("size mismatch: %v", err)
	}
	checkNear(t, "teacher.a", a.Data, []float64{1, 1}, 0)
	if err := EMAParams([]*Param{a}, []*Param{nil}, 0.5); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("nil parameter: %v", err)
	}
}
