package augment

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/internal/goldencase"
)

// The golden harness: every *.json case under the golden directory is run
// through this package and compared with the values PIL 9.4 / torchvision
// 0.14 produced (see /work/shared/golden/README.md, section augment/). The
// directory defaults to testdata/golden/augment at the repository root;
// SSLIGHT_GOLDEN_DIR=<dir> points it at <dir>/augment instead (for held-back
// cases). Cases of an unknown kind or op, with unknown configuration fields or
// unchecked expected outputs fail, so a new case can never pass silently.
// The case format, folder and tolerance rule are internal/goldencase's.

// opConfig is the union of every op's configuration fields (a case's config,
// or one step of a pipeline). Unknown fields are rejected when decoding.
type opConfig struct {
	Op                string   `json:"op"`
	Factor            *float64 `json:"factor"`
	Threshold         *int     `json:"threshold"`
	NumOutputChannels *int     `json:"num_output_channels"`
	Order             []int    `json:"order"`
	Factors           *struct {
		Brightness *float64 `json:"brightness"`
		Contrast   *float64 `json:"contrast"`
		Saturation *float64 `json:"saturation"`
		Hue        *float64 `json:"hue"`
	} `json:"factors"`
	Top              *int      `json:"top"`
	Left             *int      `json:"left"`
	Height           *int      `json:"height"`
	Width            *int      `json:"width"`
	Size             []int     `json:"size"`
	Interpolation    *string   `json:"interpolation"`
	Resize           *int      `json:"resize"`
	Crop             *int      `json:"crop"`
	ResizedHW        []int     `json:"resized_hw"`
	CropTop          *int      `json:"crop_top"`
	CropLeft         *int      `json:"crop_left"`
	Radius           *float64  `json:"radius"`
	BoxRadiusFloat32 *float64  `json:"box_radius_float32"`
	Mean             []float64 `json:"mean"`
	Std              []float64 `json:"std"`
}

// kindOps maps each single-op case kind to its config.op.
var kindOps = map[string]string{
	"augment_hflip":               "hflip",
	"augment_solarize":            "solarize",
	"augment_grayscale":           "grayscale",
	"augment_adjust_brightness":   "adjust_brightness",
	"augment_adjust_contrast":     "adjust_contrast",
	"augment_adjust_saturation":   "adjust_saturation",
	"augment_adjust_hue":          "adjust_hue",
	"augment_color_jitter":        "color_jitter",
	"augment_resized_crop":        "resized_crop",
	"augment_resize_center_crop":  "resize_center_crop",
	"augment_gaussian_blur":       "gaussian_blur",
	"augment_to_tensor_normalize": "to_tensor_normalize",
}

// arrayImage converts a uint8 [H, W, 3] array to an Image.
func arrayImage(a *goldencase.Array) (*Image, error) {
	if a.Dtype != "uint8" || len(a.Shape) != 3 || a.Shape[2] != 3 {
		return nil, fmt.Errorf("want uint8 [H, W, 3], got %s %v", a.Dtype, a.Shape)
	}
	img := NewImage(a.Shape[1], a.Shape[0])
	if len(a.Data) != len(img.Pix) {
		return nil, fmt.Errorf("shape %v but %d values", a.Shape, len(a.Data))
	}
	for i, v := range a.Data {
		if v < 0 || v > 255 || v != math.Trunc(v) {
			return nil, fmt.Errorf("value %v at %d is not uint8", v, i)
		}
		img.Pix[i] = uint8(v)
	}
	return img, nil
}

func parseArray(raw json.RawMessage) (*goldencase.Array, error) {
	var a goldencase.Array
	if err := goldencase.UnmarshalStrict(raw, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// compareImage checks got against the expected uint8 array and returns the
// largest absolute difference.
func compareImage(got *Image, raw json.RawMessage, tol goldencase.Tolerance) (int, error) {
	want, err := parseArray(raw)
	if err != nil {
		return 0, err
	}
	if want.Dtype != "uint8" || len(want.Shape) != 3 || want.Shape[0] != got.H || want.Shape[1] != got.W || want.Shape[2] != 3 {
		return 0, fmt.Errorf("shape: got [%d %d 3], want %s %v", got.H, got.W, want.Dtype, want.Shape)
	}
	pix := got.Tight()
	worst, bad := 0, 0
	first := ""
	for i, w := range want.Data {
		d := math.Abs(float64(pix[i]) - w)
		worst = max(worst, int(d))
		if !tol.Within(float64(pix[i]), w) {
			if bad == 0 {
				c := i % 3
				x := (i / 3) % got.W
				y := i / 3 / got.W
				first = fmt.Sprintf("(y=%d x=%d c=%d) got %d want %v", y, x, c, pix[i], w)
			}
			bad++
		}
	}
	if bad > 0 {
		return worst, fmt.Errorf("%d of %d values outside tolerance %+v (max diff %d), first at %s", bad, len(pix), tol, worst, first)
	}
	return worst, nil
}

func compareTensor(got []float32, shape []int, raw json.RawMessage, tol goldencase.Tolerance) (float64, error) {
	want, err := parseArray(raw)
	if err != nil {
		return 0, err
	}
	if want.Dtype != "float32" || fmt.Sprint(want.Shape) != fmt.Sprint(shape) {
		return 0, fmt.Errorf("shape: got float32 %v, want %s %v", shape, want.Dtype, want.Shape)
	}
	worst, bad := 0.0, 0
	for i, w := range want.Data {
		w32 := float64(float32(w))
		d := math.Abs(float64(got[i]) - w32)
		worst = max(worst, d)
		if !tol.Within(float64(got[i]), w32) {
			bad++
		}
	}
	if bad > 0 {
		return worst, fmt.Errorf("%d of %d values outside tolerance %+v (max diff %g)", bad, len(got), tol, worst)
	}
	return worst, nil
}

func needInt(name string, p *int) (int, error) {
	if p == nil {
		return 0, fmt.Errorf("config.%s missing", name)
	}
	return *p, nil
}

func needFloat(name string, p *float64) (float64, error) {
	if p == nil {
		return 0, fmt.Errorf("config.%s missing", name)
	}
	return *p, nil
}

// applyGoldenOp runs one configured op on img. It returns the uint8 result, or
// for to_tensor_normalize the tensor and its shape.
func applyGoldenOp(cfg *opConfig, img *Image) (*Image, []float32, []int, error) {
	out := &Image{}
	switch cfg.Op {
	case "hflip":
		HFlip(out, img)
	case "solarize":
		th := 128
		if cfg.Threshold != nil {
			th = *cfg.Threshold
		}
		Solarize(out, img, th)
	case "grayscale":
		if cfg.NumOutputChannels != nil && *cfg.NumOutputChannels != 3 {
			return nil, nil, nil, fmt.Errorf("grayscale with %d output channels is not an RGB op", *cfg.NumOutputChannels)
		}
		Grayscale(out, img)
	case "adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue":
		f, err := needFloat("factor", cfg.Factor)
		if err != nil {
			return nil, nil, nil, err
		}
		switch cfg.Op {
		case "adjust_brightness":
			err = AdjustBrightness(out, img, f)
		case "adjust_contrast":
			err = AdjustContrast(out, img, f)
		case "adjust_saturation":
			err = AdjustSaturation(out, img, f)
		default:
			err = AdjustHue(out, img, f)
		}
		if err != nil {
			return nil, nil, nil, err
		}
	case "color_jitter":
		if cfg.Factors == nil || len(cfg.Order) == 0 {
			return nil, nil, nil, fmt.Errorf("color_jitter needs order and factors")
		}
		order, err := MakeJitterOrder(cfg.Order...)
		if err != nil {
			return nil, nil, nil, err
		}
		p := JitterParams{Order: order}
		for _, op := range cfg.Order {
			var f *float64
			var dst *float64
			switch op {
			case JitterBrightness:
				f, dst = cfg.Factors.Brightness, &p.Brightness
			case JitterContrast:
				f, dst = cfg.Factors.Contrast, &p.Contrast
			case JitterSaturation:
				f, dst = cfg.Factors.Saturation, &p.Saturation
			case JitterHue:
				f, dst = cfg.Factors.Hue, &p.Hue
			default:
				return nil, nil, nil, fmt.Errorf("color_jitter: unknown op id %d", op)
			}
			if f == nil {
				return nil, nil, nil, fmt.Errorf("color_jitter: no factor for op %d", op)
			}
			*dst = *f
		}
		if err := ColorJitter(out, img, &p); err != nil {
			return nil, nil, nil, err
		}
	case "resized_crop":
		if cfg.Interpolation != nil && *cfg.Interpolation != "bicubic" {
			return nil, nil, nil, fmt.Errorf("resized_crop interpolation %q not supported", *cfg.Interpolation)
		}
		var box Rect
		var err error
		for _, f := range []struct {
			name string
			p    *int
			dst  *int
		}{{"top", cfg.Top, &box.Top}, {"left", cfg.Left, &box.Left}, {"height", cfg.Height, &box.Height}, {"width", cfg.Width, &box.Width}} {
			if *f.dst, err = needInt(f.name, f.p); err != nil {
				return nil, nil, nil, err
			}
		}
		if len(cfg.Size) != 2 {
			return nil, nil, nil, fmt.Errorf("resized_crop size %v is not [h, w]", cfg.Size)
		}
		if err := ResizedCrop(out, img, box, cfg.Size[1], cfg.Size[0], false); err != nil {
			return nil, nil, nil, err
		}
	case "resize_center_crop":
		if cfg.Interpolation != nil && *cfg.Interpolation != "bicubic" {
			return nil, nil, nil, fmt.Errorf("resize_center_crop interpolation %q not supported", *cfg.Interpolation)
		}
		rs, err := needInt("resize", cfg.Resize)
		if err != nil {
			return nil, nil, nil, err
		}
		cr, err := needInt("crop", cfg.Crop)
		if err != nil {
			return nil, nil, nil, err
		}
		nw, nh := ResizeShorterSize(img.W, img.H, rs)
		if cfg.ResizedHW != nil && (len(cfg.ResizedHW) != 2 || cfg.ResizedHW[0] != nh || cfg.ResizedHW[1] != nw) {
			return nil, nil, nil, fmt.Errorf("resized size: got [%d %d], want %v", nh, nw, cfg.ResizedHW)
		}
		if cfg.CropTop != nil && *cfg.CropTop != CenterCropOffset(nh, cr) {
			return nil, nil, nil, fmt.Errorf("crop top: got %d, want %d", CenterCropOffset(nh, cr), *cfg.CropTop)
		}
		if cfg.CropLeft != nil && *cfg.CropLeft != CenterCropOffset(nw, cr) {
			return nil, nil, nil, fmt.Errorf("crop left: got %d, want %d", CenterCropOffset(nw, cr), *cfg.CropLeft)
		}
		if err := ResizeCenterCrop(out, img, rs, cr); err != nil {
			return nil, nil, nil, err
		}
	case "gaussian_blur":
		r, err := needFloat("radius", cfg.Radius)
		if err != nil {
			return nil, nil, nil, err
		}
		if cfg.BoxRadiusFloat32 != nil {
			if got := GaussianBoxRadius(float32(r)); got != float32(*cfg.BoxRadiusFloat32) {
				return nil, nil, nil, fmt.Errorf("box radius: got %v, want %v", got, float32(*cfg.BoxRadiusFloat32))
			}
		}
		if err := GaussianBlur(out, img, r); err != nil {
			return nil, nil, nil, err
		}
	case "to_tensor_normalize":
		if len(cfg.Mean) != 3 || len(cfg.Std) != 3 {
			return nil, nil, nil, fmt.Errorf("to_tensor_normalize needs 3 means and stds")
		}
		var mean, std [3]float32
		for c := 0; c < 3; c++ {
			mean[c], std[c] = float32(cfg.Mean[c]), float32(cfg.Std[c])
		}
		t := make([]float32, 3*img.W*img.H)
		if err := ToTensorNormalize(t, img, mean, std); err != nil {
			return nil, nil, nil, err
		}
		return nil, t, []int{3, img.H, img.W}, nil
	default:
		return nil, nil, nil, fmt.Errorf("unknown op %q", cfg.Op)
	}
	return out, nil, nil, nil
}

// checkedOutputs tracks which expected outputs a case checked.
type checkedOutputs map[string]bool

func runGoldenCase(c *goldencase.Case) (string, error) {
	done := checkedOutputs{}
	var summary string
	switch {
	case c.Kind == "rrc_get_params":
		s, err := runRRCCase(c, done)
		if err != nil {
			return "", err
		}
		summary = s
	case c.Kind == "augment_pipeline":
		s, err := runPipelineCase(c, done)
		if err != nil {
			return "", err
		}
		summary = s
	case kindOps[c.Kind] != "":
		var cfg opConfig
		if err := goldencase.UnmarshalStrict(c.Config, &cfg); err != nil {
			return "", fmt.Errorf("config: %w", err)
		}
		if cfg.Op != kindOps[c.Kind] {
			return "", fmt.Errorf("kind %s with op %q", c.Kind, cfg.Op)
		}
		img, err := inputImage(c)
		if err != nil {
			return "", err
		}
		out, tensor, shape, err := applyGoldenOp(&cfg, img)
		if err != nil {
			return "", fmt.Errorf("%s: %w", cfg.Op, err)
		}
		if tensor != nil {
			d, err := compareTensor(tensor, shape, c.Expected["tensor"], c.Tolerance.For("tensor"))
			if err != nil {
				return "", fmt.Errorf("tensor: %w", err)
			}
			done["tensor"] = true
			summary = fmt.Sprintf("max diff %g", d)
		} else {
			d, err := compareImage(out, c.Expected["image"], c.Tolerance.For("image"))
			if err != nil {
				return "", fmt.Errorf("image: %w", err)
			}
			done["image"] = true
			summary = fmt.Sprintf("max diff %d", d)
		}
	default:
		return "", fmt.Errorf("unknown case kind %q", c.Kind)
	}
	for k := range c.Expected {
		if !done[k] {
			return "", fmt.Errorf("expected output %q was not checked", k)
		}
	}
	return summary, nil
}

func inputImage(c *goldencase.Case) (*Image, error) {
	raw, ok := c.Inputs["image"]
	if !ok {
		return nil, fmt.Errorf("inputs.image missing")
	}
	a, err := parseArray(raw)
	if err != nil {
		return nil, fmt.Errorf("inputs.image: %w", err)
	}
	img, err := arrayImage(a)
	if err != nil {
		return nil, fmt.Errorf("inputs.image: %w", err)
	}
	return img, nil
}

func runPipelineCase(c *goldencase.Case, done checkedOutputs) (string, error) {
	var cfg struct {
		Steps []json.RawMessage `json:"steps"`
	}
	if err := goldencase.UnmarshalStrict(c.Config, &cfg); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	img, err := inputImage(c)
	if err != nil {
		return "", err
	}
	var inter []json.RawMessage
	if raw, ok := c.Expected["intermediate_images"]; ok {
		if err := json.Unmarshal(raw, &inter); err != nil {
			return "", fmt.Errorf("expected.intermediate_images: %w", err)
		}
	}
	cur := img
	var tensor []float32
	var shape []int
	k := 0
	worst := 0
	for i, raw := range cfg.Steps {
		var step opConfig
		if err := goldencase.UnmarshalStrict(raw, &step); err != nil {
			return "", fmt.Errorf("step %d: %w", i, err)
		}
		if tensor != nil {
			return "", fmt.Errorf("step %d (%s) after to_tensor_normalize", i, step.Op)
		}
		out, t, sh, err := applyGoldenOp(&step, cur)
		if err != nil {
			return "", fmt.Errorf("step %d (%s): %w", i, step.Op, err)
		}
		if t != nil {
			tensor, shape = t, sh
			continue
		}
		cur = out
		if inter != nil {
			if k >= len(inter) {
				return "", fmt.Errorf("more uint8 steps than intermediate_images (%d)", len(inter))
			}
			d, err := compareImage(cur, inter[k], c.Tolerance.For("intermediate_images"))
			if err != nil {
				return "", fmt.Errorf("intermediate image %d (after %s): %w", k, step.Op, err)
			}
			worst = max(worst, d)
		}
		k++
	}
	if inter != nil {
		if k != len(inter) {
			return "", fmt.Errorf("%d uint8 steps but %d intermediate_images", k, len(inter))
		}
		done["intermediate_images"] = true
	}
	if raw, ok := c.Expected["image"]; ok {
		d, err := compareImage(cur, raw, c.Tolerance.For("image"))
		if err != nil {
			return "", fmt.Errorf("image: %w", err)
		}
		worst = max(worst, d)
		done["image"] = true
	}
	summary := fmt.Sprintf("max diff %d", worst)
	if raw, ok := c.Expected["tensor"]; ok {
		if tensor == nil {
			return "", fmt.Errorf("expected a tensor but the steps have no to_tensor_normalize")
		}
		d, err := compareTensor(tensor, shape, raw, c.Tolerance.For("tensor"))
		if err != nil {
			return "", fmt.Errorf("tensor: %w", err)
		}
		done["tensor"] = true
		summary += fmt.Sprintf(", tensor %g", d)
	}
	return summary, nil
}

// recordedDraws replays the draws an rrc_get_params case recorded, checking
// that the code asks for them in torchvision's order and with its bounds.
type recordedDraws struct {
	scaleLo float32
	scaleHi float32
	logLo   float32
	logHi   float32
	next    int // index into the flattened draw sequence
	seq     []float64
	kinds   []string
	err     error
}

type rrcAttempt struct {
	ScaleDraw    float64 `json:"scale_draw"`
	LogRatioDraw float64 `json:"log_ratio_draw"`
	AspectRatio  float64 `json:"aspect_ratio"`
	TargetArea   float64 `json:"target_area"`
	W            int     `json:"w"`
	H            int     `json:"h"`
	Accepted     bool    `json:"accepted"`
	IDraw        *int    `json:"i_draw"`
	JDraw        *int    `json:"j_draw"`
}

func (r *recordedDraws) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}

func (r *recordedDraws) pop(kind string) float64 {
	if r.next >= len(r.seq) {
		r.fail("draw %d (%s) beyond the %d recorded draws", r.next, kind, len(r.seq))
		return 0
	}
	if r.kinds[r.next] != kind {
		r.fail("draw %d: code asked for %s, recorded %s", r.next, kind, r.kinds[r.next])
	}
	v := r.seq[r.next]
	r.next++
	return v
}

func (r *recordedDraws) Uniform32(lo, hi float32) float32 {
	kind := "scale"
	if r.next < len(r.kinds) && r.kinds[r.next] == "log_ratio" {
		kind = "log_ratio"
	}
	switch kind {
	case "scale":
		if lo != r.scaleLo || hi != r.scaleHi {
			r.fail("scale draw bounds [%v, %v], want [%v, %v]", lo, hi, r.scaleLo, r.scaleHi)
		}
	default:
		if lo != r.logLo || hi != r.logHi {
			r.fail("log-ratio draw bounds [%v, %v], want [%v, %v]", lo, hi, r.logLo, r.logHi)
		}
	}
	return float32(r.pop(kind))
}

func (r *recordedDraws) IntN(n int) int {
	kind := "i"
	if r.next < len(r.kinds) && r.kinds[r.next] == "j" {
		kind = "j"
	}
	v := int(r.pop(kind))
	if v < 0 || v >= n {
		r.fail("%s draw %d outside [0, %d)", kind, v, n)
	}
	return v
}

func runRRCCase(c *goldencase.Case, done checkedOutputs) (string, error) {
	var cfg struct {
		Width           int        `json:"width"`
		Height          int        `json:"height"`
		Scale           [2]float64 `json:"scale"`
		Ratio           [2]float64 `json:"ratio"`
		Seed            int64      `json:"seed"`
		LogRatioFloat32 []float64  `json:"log_ratio_float32"`
	}
	if err := goldencase.UnmarshalStrict(c.Config, &cfg); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	lr := LogRatioBounds(cfg.Ratio)
	if len(cfg.LogRatioFloat32) == 2 && (lr[0] != float32(cfg.LogRatioFloat32[0]) || lr[1] != float32(cfg.LogRatioFloat32[1])) {
		return "", fmt.Errorf("log ratio bounds: got %v, want %v", lr, cfg.LogRatioFloat32)
	}
	var attempts []rrcAttempt
	if err := goldencase.UnmarshalStrict(c.Inputs["attempts"], &attempts); err != nil {
		return "", fmt.Errorf("inputs.attempts: %w", err)
	}
	d := &recordedDraws{scaleLo: float32(cfg.Scale[0]), scaleHi: float32(cfg.Scale[1]), logLo: lr[0], logHi: lr[1]}
	for i, a := range attempts {
		if got := AspectRatio(float32(a.LogRatioDraw)); got != float64(float32(a.AspectRatio)) {
			return "", fmt.Errorf("attempt %d: aspect ratio exp(%v) = %v, torch gave %v", i, a.LogRatioDraw, got, a.AspectRatio)
		}
		d.seq = append(d.seq, a.ScaleDraw, a.LogRatioDraw)
		d.kinds = append(d.kinds, "scale", "log_ratio")
		if a.Accepted {
			if a.IDraw == nil || a.JDraw == nil {
				return "", fmt.Errorf("attempt %d accepted without i/j draws", i)
			}
			d.seq = append(d.seq, float64(*a.IDraw), float64(*a.JDraw))
			d.kinds = append(d.kinds, "i", "j")
		}
	}
	got, err := RandomResizedCropParams(cfg.Width, cfg.Height, cfg.Scale, cfg.Ratio, d)
	if err != nil {
		return "", err
	}
	if d.err != nil {
		return "", d.err
	}
	if d.next != len(d.seq) {
		return "", fmt.Errorf("used %d of %d recorded draws", d.next, len(d.seq))
	}
	var want struct {
		Top       int  `json:"top"`
		Left      int  `json:"left"`
		Height    int  `json:"height"`
		Width     int  `json:"width"`
		Fallback  bool `json:"fallback"`
		NAttempts int  `json:"n_attempts"`
	}
	raw, _ := json.Marshal(c.Expected)
	if err := goldencase.UnmarshalStrict(raw, &want); err != nil {
		return "", fmt.Errorf("expected: %w", err)
	}
	if got.Top != want.Top || got.Left != want.Left || got.Height != want.Height || got.Width != want.Width ||
		got.Fallback != want.Fallback || got.Attempts != want.NAttempts {
		return "", fmt.Errorf("got %+v, want %+v", got, want)
	}
	for _, k := range []string{"top", "left", "height", "width", "fallback", "n_attempts"} {
		done[k] = true
	}
	return fmt.Sprintf("box %dx%d+%d+%d fallback=%v attempts=%d", got.Width, got.Height, got.Left, got.Top, got.Fallback, got.Attempts), nil
}

// runGoldenDir runs every case file in dir and returns how many passed.
func runGoldenDir(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, f := range goldencase.CaseFiles(t, dir) {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			c := goldencase.ReadCase(t, f)
			summary, err := runGoldenCase(&c)
			if err != nil {
				t.Fatalf("%s (%s): %v", name, c.Kind, err)
			}
			t.Logf("%s: %s", c.Kind, summary)
			n++
		})
	}
	return n
}

func TestGoldenAugment(t *testing.T) {
	dir := goldencase.Dir("augment")
	n := runGoldenDir(t, dir)
	t.Logf("golden augment: %d cases checked", n)
}
