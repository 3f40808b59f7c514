package augment

import (
	"encoding/json"
	"fmt"
)

// JitterParams is one draw of torchvision's ColorJitter: the enabled
// operations in the order they are applied (an operation whose intensity is 0
// is disabled and absent, as torchvision skips it) and the factor of each.
// Factors of absent operations are ignored.
type JitterParams struct {
	Order      JitterOrder `json:"order,omitzero"`
	Brightness float64     `json:"brightness"`
	Contrast   float64     `json:"contrast"`
	Saturation float64     `json:"saturation"`
	Hue        float64     `json:"hue"`
}

// JitterOrder is a sequence of distinct jitter operation ids
// (JitterBrightness, JitterContrast, JitterSaturation, JitterHue), stored
// inline so that copies of a ViewParams never share it. Its JSON form is an
// array of ids, e.g. [1, 3, 0, 2].
type JitterOrder struct {
	n   uint8
	ops [4]uint8
}

// MakeJitterOrder returns the order ops, or an error naming the problem if an
// id is out of range or repeated, or there are more than four.
func MakeJitterOrder(ops ...int) (JitterOrder, error) {
	var o JitterOrder
	for _, op := range ops {
		if op < JitterBrightness || op > JitterHue {
			return JitterOrder{}, fmt.Errorf("jitter order %v: unknown operation %d: %w", ops, op, ErrBadPolicy)
		}
		for i := 0; i < o.Len(); i++ {
			if o.Op(i) == op {
				return JitterOrder{}, fmt.Errorf("jitter order %v: operation %d repeated: %w", ops, op, ErrBadPolicy)
			}
		}
		if o.Len() == len(o.ops) {
			return JitterOrder{}, fmt.Errorf("jitter order %v: more than four operations: %w", ops, ErrBadPolicy)
		}
		o.ops[o.n] = uint8(op)
		o.n++
	}
	return o, nil
}

// Len is the number of operations.
func (o JitterOrder) Len() int { return int(o.n) }

// Op is the i-th operation applied.
func (o JitterOrder) Op(i int) int { return int(o.ops[:o.n][i]) }

// Ops returns the operations as a new slice.
func (o JitterOrder) Ops() []int {
	out := make([]int, o.Len())
	for i := range out {
		out[i] = o.Op(i)
	}
	return out
}

// MarshalJSON writes the order as a JSON array of ids.
func (o JitterOrder) MarshalJSON() ([]byte, error) {
	return json.Marshal(o.Ops())
}

// UnmarshalJSON reads a JSON array of ids, validating it like MakeJitterOrder.
func (o *JitterOrder) UnmarshalJSON(b []byte) error {
	var ops []int
	if err := json.Unmarshal(b, &ops); err != nil {
		return fmt.Errorf("jitter order: %w", err)
	}
	v, err := MakeJitterOrder(ops...)
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// ViewParams records every random choice made for one view, so the view can
// be audited and replayed (Replay) byte for byte from the source image.
type ViewParams struct {
	// View is the view index: 0 and 1 global, 2... local.
	View int `json:"view"`
	// Size is the side of the square output.
	Size int `json:"size"`
	// Crop is the RandomResizedCrop box in source pixels.
	Crop CropParams `json:"crop"`
	// Flip: mirrored left to right after the crop.
	Flip bool `json:"flip"`
	// Jittered: ColorJitter was applied, with Jitter's draw.
	Jittered bool         `json:"jittered"`
	Jitter   JitterParams `json:"jitter"`
	// Gray: converted to grayscale (3 channels).
	Gray bool `json:"gray"`
	// Blur: Gaussian-blurred with radius BlurRadius.
	Blur       bool    `json:"blur"`
	BlurRadius float64 `json:"blur_radius,omitempty"`
	// Solarize: solarised at threshold 128 (second global view only).
	Solarize bool `json:"solarize"`
}

// reset clears p for reuse.
func (p *ViewParams) reset() {
	*p = ViewParams{}
}
