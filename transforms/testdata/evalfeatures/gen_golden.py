# Golden cases of the evaluation view, computed with PIL 9.4 and
# torchvision 0.14 exactly as the SSLight reference's evaluation transform:
# Resize(int(S*256/224)) (bicubic, antialiased) + CenterCrop(S) + ToTensor +
# Normalize(mean, std). Run with /usr/bin/python3 gen_golden.py; it writes
# the source PNGs and <name>.npy (float32 [3, S, S]) next to itself.
import numpy as np
from PIL import Image
from torchvision import transforms

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def view(size):
    return transforms.Compose([
        transforms.Resize(int(size * 256 / 224), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])


rng = np.random.default_rng(0)
# A landscape RGB image, downscaled: gradients plus noise.
h, w = 37, 50
y, x = np.mgrid[0:h, 0:w]
rgb = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1) + rng.integers(0, 60, (h, w, 3))
Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save("rgb_50x37.png")
# A small portrait gray image, upscaled.
gray = rng.integers(0, 256, (10, 8)).astype(np.uint8)
Image.fromarray(gray, "L").save("gray_8x10.png")

for name, size in [("rgb_50x37", 24), ("gray_8x10", 16)]:
    img = Image.open(name + ".png").convert("RGB")
    t = view(size)(img).numpy().astype("<f4")
    np.save("%s_s%d.npy" % (name, size), t)
    print(name, size, t.shape)
