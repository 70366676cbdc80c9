"""Makes regnet-cli/tests/images/: a few synthetic images (PNG, grayscale PNG, JPEG, lossless
WebP; landscape, portrait smaller than the resize, square) and `expected.safetensors`, each image
through torchvision's evaluation transform (Resize(256), CenterCrop(224), ToTensor, Normalize)
after PIL's `convert("RGB")`, as the preprocessing parity test's reference.

    python3 tools/make_images.py      (needs numpy, pillow, torch, torchvision, safetensors)
"""
import os

import numpy as np
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms as T

OUT = os.path.join(os.path.dirname(__file__), "..", "regnet-cli", "tests", "images")
rng = np.random.default_rng(7)


def scene(width, height):
    """Smooth colour, a checkerboard (edges that alias without antialiasing) and noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 127 + 120 * np.sin(x / 17.0) * np.cos(y / 23.0)
    image = np.stack([red, 255 * (x / width), 255 * (y / height)], -1)
    image[(x // 8 + y // 8) % 2 == 0] *= 0.8
    image += rng.normal(0, 12, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB")


os.makedirs(OUT, exist_ok=True)
scene(320, 240).save(os.path.join(OUT, "landscape.png"))
scene(200, 300).save(os.path.join(OUT, "portrait_upscaled.png"))
scene(500, 375).convert("L").save(os.path.join(OUT, "gray.png"))
scene(640, 480).save(os.path.join(OUT, "photo.jpg"), quality=90)
scene(300, 300).save(os.path.join(OUT, "square.webp"), lossless=True)
transform = T.Compose([
    T.Resize(256),
    T.CenterCrop(224),
    T.ToTensor(),
    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])
names = ["landscape.png", "portrait_upscaled.png", "gray.png", "photo.jpg", "square.webp"]
save_file(
    {name: transform(Image.open(os.path.join(OUT, name)).convert("RGB")).contiguous() for name in names},
    os.path.join(OUT, "expected.safetensors"),
)
