package optim

import "fmt"

// EMAUpdate moves the teacher towards the student as the reference's
// trainers do after every optimiser step:
//
//	t = t·m + (1−m)·s
//
// in float32, with m (from the teacher-momentum schedule) and 1−m formed in
// float64 and each rounded to float32, as torch does with param_k.mul_(m)
// and (1 - m) * param_q. teacher and student must have the same length.
func EMAUpdate(teacher, student []float32, m float64) error {
	if len(teacher) != len(student) {
		return fmt.Errorf("EMA update: teacher has %d values, student %d: %w", len(teacher), len(student), ErrShape)
	}
	m32 := float32(m)
	c := float32(1 - m)
	s := student[:len(teacher)]
	for i := range teacher {
		teacher[i] = float32(teacher[i]*m32) + float32(c*s[i])
	}
	return nil
}

// EMAParams applies EMAUpdate to each teacher parameter from the student
// parameter at the same position (the reference zips the two parameter
// lists; names differ by their prefix). The lists must have the same length
// and each pair the same size; nothing is updated otherwise.
func EMAParams(teacher, student []*Param, m float64) error {
	if len(teacher) != len(student) {
		return fmt.Errorf("EMA update: %d teacher parameters, %d student parameters: %w", len(teacher), len(student), ErrShape)
	}
	for i := range teacher {
		if teacher[i] == nil || student[i] == nil {
			return fmt.Errorf("EMA update: parameter %d is nil: %w", i, ErrInvalidParams)
		}
		if len(teacher[i].Data) != len(student[i].Data) {
			return fmt.Errorf("EMA update: teacher %q has %d values, student %q %d: %w",
				teacher[i].Name, len(teacher[i].Data), student[i].Name, len(student[i].Data), ErrShape)
		}
	}
	for i := range teacher {
		// Sizes were checked above, so this cannot fail.
		_ = EMAUpdate(teacher[i].Data, student[i].Data, m)
	}
	return nil
}
