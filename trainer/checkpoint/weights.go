package checkpoint

import (
	"errors"
	"fmt"
	"strings"
)

// Weights says which network of a checkpoint to load: the student (the
// network being trained, what the paper evaluates) or the teacher (DINO's
// EMA teacher, MoCo's momentum key encoder), which DINO reports to be the
// better feature extractor for most of training. The zero value means
// Student.
type Weights string

// The networks a checkpoint can give.
const (
	Student Weights = "student"
	Teacher Weights = "teacher"
)

// ParseWeights reads a --weights value: "student" or "teacher" (any case);
// "" means Student.
func ParseWeights(s string) (Weights, error) {
	switch w := Weights(strings.ToLower(strings.TrimSpace(s))); w {
	case "", Student:
		return Student, nil
	case Teacher:
		return Teacher, nil
	}
	return "", fmt.Errorf("weights %q: want %s or %s", s, Student, Teacher)
}

// OrStudent returns w, or Student for the zero value.
func (w Weights) OrStudent() Weights {
	if w == "" {
		return Student
	}
	return w
}

// ErrNoTeacher is wrapped by the error of loading the teacher of a
// checkpoint whose method trains a single network (SwAV).
var ErrNoTeacher = errors.New("the method has no teacher")

// TeacherPrefix is where a method's second network lives in
// checkpoint.safetensors: "teacher." (DINO), "key." (MoCo), or "" when the
// method has none (SwAV).
func TeacherPrefix(method string) string {
	switch method {
	case "DINO":
		return "teacher."
	case "MOCO":
		return "key."
	}
	return ""
}

// TeacherName says what a method's teacher is, for messages: "EMA
// teacher", "key encoder", or "" when it has none.
func TeacherName(method string) string {
	switch method {
	case "DINO":
		return "EMA teacher"
	case "MOCO":
		return "key encoder"
	}
	return ""
}

// noTeacher is the error for a teacher asked of a checkpoint without one.
func noTeacher(dir, method string) error {
	return fmt.Errorf("checkpoint %s: %w: a %s checkpoint trains one network (DINO has its EMA teacher, MoCo its key encoder); use the student weights",
		dir, ErrNoTeacher, method)
}
