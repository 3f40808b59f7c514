package augment

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestCrossCheckPIL asks PIL 9.4 / torchvision 0.14 themselves for a few
// hundred fresh cases in the golden format (random sizes from 1×1 up, random
// boxes, factors, radii and orders, noise and photo content, upscaling,
// padding, tiny images where the box blur's edge branches differ) and runs
// them through the golden harness with zero tolerance: the ports are meant to
// be bit-exact, not merely within the golden files' tolerances. It needs a
// python3 with PIL, numpy, torch and torchvision and skips without one (or
// with -short). SSLIGHT_CROSSCHECK_SEED picks another random draw.
func TestCrossCheckPIL(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-check against PIL skipped in -short mode")
	}
	py := findPython(t)
	seed := 1
	if s := os.Getenv("SSLIGHT_CROSSCHECK_SEED"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("SSLIGHT_CROSSCHECK_SEED=%q: %v", s, err)
		}
		seed = v
	}
	dir := t.TempDir()
	photos, err := filepath.Abs(filepath.Join("..", "testdata", "photos"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", pilCaseScript, dir, strconv.Itoa(seed), photos, "20")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("generating PIL cases: %v\n%s", err, out)
	}
	n := runGoldenDir(t, dir)
	t.Logf("cross-check against PIL (seed %d): %d cases checked", seed, n)
}

// findPython returns a python3 that can import PIL, numpy, torch and
// torchvision, or skips the test.
func findPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import PIL, numpy, torch, torchvision").Run() == nil {
			return path
		}
	}
	t.Skip("no python3 with PIL, numpy, torch and torchvision")
	return ""
}

// pilCaseScript writes random cases in the golden format. Usage:
// python3 -c <script> OUT_DIR SEED PHOTOS_DIR CASES_PER_KIND.
const pilCaseScript = `
import sys, json, random, math, glob, os
import numpy as np
from PIL import Image, ImageFilter, ImageOps
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F

out_dir, seed, photos_dir, per_kind = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rng = random.Random(seed)
nprng = np.random.default_rng(seed)
photos = sorted(glob.glob(os.path.join(photos_dir, "*.jpg")))
decoded = [Image.open(p).convert("RGB") for p in photos]
BIC = T.InterpolationMode.BICUBIC

def arr(a, dtype):
    a = np.asarray(a)
    return {"shape": list(a.shape), "dtype": dtype, "data": a.ravel().tolist()}

def source_image(max_side=48):
    w, h = rng.randint(1, max_side), rng.randint(1, max_side)
    kind = rng.choice(["noise", "photo", "photo", "flat", "gradient"])
    if kind == "photo" and decoded:
        src = rng.choice(decoded)
        w, h = min(w, src.width), min(h, src.height)
        x, y = rng.randint(0, src.width - w), rng.randint(0, src.height - h)
        return src.crop((x, y, x + w, y + h)).copy()
    if kind == "flat":
        a = np.empty((h, w, 3), np.uint8); a[...] = nprng.integers(0, 256, 3)
    elif kind == "gradient":
        yy, xx = np.mgrid[0:h, 0:w]
        a = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) * 7) % 256], -1).astype(np.uint8)
    else:
        a = nprng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(a, "RGB")

def factor():
    return rng.choice([0.0, 1.0, 0.5, rng.uniform(0, 1), rng.uniform(0, 2.5), rng.uniform(0.6, 1.4)])

def hue():
    return rng.choice([0.0, 0.5, -0.5, rng.uniform(-0.5, 0.5), rng.uniform(-0.1, 0.1)])

def jitter_draw():
    ops = [0, 1, 2, 3]
    rng.shuffle(ops)
    ops = ops[: rng.choice([4, 4, 3, 2, 1])]
    f = {"brightness": factor(), "contrast": factor(), "saturation": factor(), "hue": hue()}
    return ops, f

def apply_jitter(img, order, f):
    for op in order:
        if op == 0: img = F.adjust_brightness(img, f["brightness"])
        elif op == 1: img = F.adjust_contrast(img, f["contrast"])
        elif op == 2: img = F.adjust_saturation(img, f["saturation"])
        else: img = F.adjust_hue(img, f["hue"])
    return img

def rand_box(img):
    h = rng.randint(1, img.height); w = rng.randint(1, img.width)
    return rng.randint(0, img.height - h), rng.randint(0, img.width - w), h, w

count = 0
def write(kind, config, img, expected, tol={"abs": 0, "rel": 0}):
    global count
    case = {"kind": kind, "description": "PIL cross-check", "config": config,
            "inputs": {"image": arr(img, "uint8")}, "expected": expected, "tolerance": tol}
    with open(os.path.join(out_dir, "%s_%04d.json" % (kind, count)), "w") as fh:
        json.dump(case, fh)
    count += 1

def img_out(im):
    return arr(np.asarray(im), "uint8")

for _ in range(per_kind):
    im = source_image()
    write("augment_hflip", {"op": "hflip"}, im, {"image": img_out(F.hflip(im))})
    th = rng.choice([128, rng.randint(0, 256)])
    write("augment_solarize", {"op": "solarize", "threshold": th}, im, {"image": img_out(ImageOps.solarize(im, th))})
    write("augment_grayscale", {"op": "grayscale", "num_output_channels": 3}, im,
          {"image": img_out(F.rgb_to_grayscale(im, 3))})
    for name, fn in [("brightness", F.adjust_brightness), ("contrast", F.adjust_contrast), ("saturation", F.adjust_saturation)]:
        f = factor()
        write("augment_adjust_" + name, {"op": "adjust_" + name, "factor": f}, im, {"image": img_out(fn(im, f))})
    h = hue()
    write("augment_adjust_hue", {"op": "adjust_hue", "factor": h}, im, {"image": img_out(F.adjust_hue(im, h))})
    order, f = jitter_draw()
    write("augment_color_jitter", {"op": "color_jitter", "order": order, "factors": f}, im,
          {"image": img_out(apply_jitter(im, order, f))})
    top, left, bh, bw = rand_box(im)
    size = [rng.randint(1, 64), rng.randint(1, 64)]
    if rng.random() < 0.2:
        size = [bh, rng.randint(1, 64)]
    if rng.random() < 0.2:
        size = [rng.randint(1, 64), bw]
    write("augment_resized_crop", {"op": "resized_crop", "top": top, "left": left, "height": bh, "width": bw,
          "size": size, "interpolation": "bicubic"}, im,
          {"image": img_out(F.resized_crop(im, top, left, bh, bw, size, BIC))})
    rs, cr = rng.randint(1, 64), rng.randint(1, 72)
    resized = T.Resize(rs, interpolation=BIC)(im)
    write("augment_resize_center_crop", {"op": "resize_center_crop", "resize": rs, "crop": cr,
          "interpolation": "bicubic", "resized_hw": [resized.height, resized.width]}, im,
          {"image": img_out(T.CenterCrop(cr)(resized))})
    r = rng.choice([0.1, 2.0, rng.uniform(0.05, 2.0), rng.uniform(0.05, 9.0)])
    bim = source_image(rng.choice([4, 12, 48]))
    write("augment_gaussian_blur", {"op": "gaussian_blur", "radius": r}, bim,
          {"image": img_out(bim.filter(ImageFilter.GaussianBlur(r)))})
    mean = [rng.uniform(0, 1) for _ in range(3)]
    std = [rng.uniform(0.05, 1) for _ in range(3)]
    t = T.Normalize(mean, std)(F.to_tensor(im))
    write("augment_to_tensor_normalize", {"op": "to_tensor_normalize", "mean": mean, "std": std}, im,
          {"tensor": arr(t.numpy(), "float32")})

    # A whole view in reference order with random choices fixed.
    im = source_image(64)
    top, left, bh, bw = rand_box(im)
    s = rng.randint(1, 40)
    steps = [{"op": "resized_crop", "top": top, "left": left, "height": bh, "width": bw, "size": [s, s]}]
    cur = F.resized_crop(im, top, left, bh, bw, [s, s], BIC)
    inter = [img_out(cur)]
    if rng.random() < 0.5:
        steps.append({"op": "hflip"}); cur = F.hflip(cur); inter.append(img_out(cur))
    if rng.random() < 0.8:
        order, f = jitter_draw()
        steps.append({"op": "color_jitter", "order": order, "factors": f}); cur = apply_jitter(cur, order, f); inter.append(img_out(cur))
    if rng.random() < 0.3:
        steps.append({"op": "grayscale"}); cur = F.rgb_to_grayscale(cur, 3); inter.append(img_out(cur))
    if rng.random() < 0.6:
        r = rng.uniform(0.1, 2.0)
        steps.append({"op": "gaussian_blur", "radius": r}); cur = cur.filter(ImageFilter.GaussianBlur(r)); inter.append(img_out(cur))
    if rng.random() < 0.3:
        steps.append({"op": "solarize", "threshold": 128}); cur = ImageOps.solarize(cur, 128); inter.append(img_out(cur))
    steps.append({"op": "to_tensor_normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})
    t = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(F.to_tensor(cur))
    write("augment_pipeline", {"steps": steps}, im,
          {"intermediate_images": inter, "image": img_out(cur), "tensor": arr(t.numpy(), "float32")})

# RandomResizedCrop.get_params: the real torchvision call, and the same torch
# draws recorded one by one (asserted to reproduce it).
for k in range(per_kind * 3):
    width, height = rng.choice([(rng.randint(1, 700), rng.randint(1, 700)), (rng.randint(1, 40), rng.randint(200, 400)),
                                (rng.randint(200, 400), rng.randint(1, 40)), (rng.randint(300, 900), rng.randint(300, 700))])
    scale = rng.choice([(0.3, 1.0), (0.05, 0.3), (0.14, 1.0), (0.05, 0.14), (0.9, 1.0), (0.995, 1.0)])
    ratio = rng.choice([(3.0 / 4.0, 4.0 / 3.0), (3.0 / 4.0, 4.0 / 3.0), (0.5, 2.0), (1.0, 1.0)])
    cseed = rng.randint(0, 2**31)
    torch.manual_seed(cseed)
    want = T.RandomResizedCrop.get_params(torch.zeros(1, height, width), list(scale), list(ratio))
    torch.manual_seed(cseed)
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    attempts, got = [], None
    for _ in range(10):
        sd = torch.empty(1).uniform_(scale[0], scale[1]).item()
        ld = torch.empty(1).uniform_(log_ratio[0], log_ratio[1]).item()
        ar = torch.exp(torch.tensor([ld], dtype=torch.float32)).item()
        target = area * sd
        w = int(round(math.sqrt(target * ar)))
        h = int(round(math.sqrt(target / ar)))
        a = {"scale_draw": sd, "log_ratio_draw": ld, "aspect_ratio": ar, "target_area": target, "w": w, "h": h,
             "accepted": bool(0 < w <= width and 0 < h <= height)}
        attempts.append(a)
        if a["accepted"]:
            a["i_draw"] = torch.randint(0, height - h + 1, size=(1,)).item()
            a["j_draw"] = torch.randint(0, width - w + 1, size=(1,)).item()
            got = (a["i_draw"], a["j_draw"], h, w)
            break
    fallback = got is None
    if fallback:
        got = want
    assert tuple(got) == tuple(want), (got, want)
    case = {"kind": "rrc_get_params", "description": "PIL cross-check",
            "config": {"width": width, "height": height, "scale": list(scale), "ratio": list(ratio), "seed": cseed,
                       "log_ratio_float32": [float(v) for v in log_ratio]},
            "inputs": {"attempts": attempts},
            "expected": {"top": want[0], "left": want[1], "height": want[2], "width": want[3],
                         "fallback": fallback, "n_attempts": len(attempts)},
            "tolerance": {"abs": 0, "rel": 0}}
    with open(os.path.join(out_dir, "rrc_get_params_%04d.json" % k), "w") as fh:
        json.dump(case, fh)
`

// TestCrossCheckPolicyPIL renders whole views with the SSLight policy (full
// sizes, real photos, every random choice) and has torchvision/PIL re-render
// each one from its recorded ViewParams JSON: resized_crop, hflip, the jitter
// operations in order, rgb_to_grayscale, GaussianBlur, solarize. Every byte
// must agree.
func TestCrossCheckPolicyPIL(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-check against PIL skipped in -short mode")
	}
	py := findPython(t)
	dir := t.TempDir()
	photos := loadTestPhotos(t)
	p := SSLightPolicy()
	type viewRec struct {
		Params ViewParams `json:"params"`
		Path   string     `json:"path"`
	}
	type imageRec struct {
		W, H  int
		Path  string
		Views []viewRec
	}
	var recs []imageRec
	var out MultiCropViews
	for i, ph := range photos {
		for epoch := 0; epoch < 2; epoch++ {
			if err := p.Apply(ph.img, 11, ph.name, epoch, &out); err != nil {
				t.Fatal(err)
			}
			rec := imageRec{W: ph.img.W, H: ph.img.H, Path: filepath.Join(dir, fmt.Sprintf("src%d.raw", i))}
			if err := os.WriteFile(rec.Path, ph.img.Tight(), 0o644); err != nil {
				t.Fatal(err)
			}
			for v := range out.Views {
				vp := filepath.Join(dir, fmt.Sprintf("view%d_%d_%d.raw", i, epoch, v))
				if err := os.WriteFile(vp, out.Views[v].Tight(), 0o644); err != nil {
					t.Fatal(err)
				}
				rec.Views = append(rec.Views, viewRec{Params: out.Params[v], Path: vp})
			}
			recs = append(recs, rec)
		}
	}
	js, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "views.json")
	if err := os.WriteFile(manifest, js, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(py, "-c", pilReplayScript, manifest).CombinedOutput()
	if err != nil {
		t.Fatalf("PIL replay: %v\n%s", err, res)
	}
	var summary struct {
		Views, Mismatched, MaxDiff int
		First                      string
	}
	if err := json.Unmarshal(res, &summary); err != nil {
		t.Fatalf("PIL replay output %q: %v", res, err)
	}
	if summary.Views != len(recs)*p.NumViews() {
		t.Fatalf("PIL replayed %d views, want %d", summary.Views, len(recs)*p.NumViews())
	}
	if summary.Mismatched != 0 {
		t.Fatalf("%d of %d views differ from PIL (max diff %d), first: %s", summary.Mismatched, summary.Views, summary.MaxDiff, summary.First)
	}
	t.Logf("policy cross-check: %d views of %d images identical to torchvision/PIL", summary.Views, len(recs))
}

// pilReplayScript re-renders recorded views with torchvision and PIL.
const pilReplayScript = `
import json, sys
import numpy as np
from PIL import Image, ImageFilter, ImageOps
import torchvision.transforms as T
import torchvision.transforms.functional as F

recs = json.load(open(sys.argv[1]))
views = mismatched = maxdiff = 0
first = ""
for rec in recs:
    src = Image.fromarray(np.fromfile(rec["Path"], np.uint8).reshape(rec["H"], rec["W"], 3), "RGB")
    for v in rec["Views"]:
        p = v["params"]
        c = p["crop"]
        img = F.resized_crop(src, c["top"], c["left"], c["height"], c["width"], [p["size"], p["size"]], T.InterpolationMode.BICUBIC)
        if p["flip"]:
            img = F.hflip(img)
        if p["jittered"]:
            j = p["jitter"]
            for op in j.get("order") or []:
                if op == 0: img = F.adjust_brightness(img, j["brightness"])
                elif op == 1: img = F.adjust_contrast(img, j["contrast"])
                elif op == 2: img = F.adjust_saturation(img, j["saturation"])
                elif op == 3: img = F.adjust_hue(img, j["hue"])
        if p["gray"]:
            img = F.rgb_to_grayscale(img, 3)
        if p["blur"]:
            img = img.filter(ImageFilter.GaussianBlur(radius=p["blur_radius"]))
        if p["solarize"]:
            img = ImageOps.solarize(img, 128)
        want = np.asarray(img).astype(np.int16)
        got = np.fromfile(v["path"], np.uint8).reshape(want.shape).astype(np.int16)
        views += 1
        d = int(np.abs(want - got).max())
        if d:
            mismatched += 1
            maxdiff = max(maxdiff, d)
            if not first:
                first = json.dumps(p)
print(json.dumps({"Views": views, "Mismatched": mismatched, "MaxDiff": maxdiff, "First": first}))
`
