"""Makes regnet-cli/tests/images/modes/: one small image per pixel format that PIL opens in a
mode of its own (16-bit, low bit depths, alpha, palettes, transparency keys, CMYK) or whose
structure a decoder could mistake (progressive JPEG, JPEG restart markers), and
`expected.safetensors`, each image's pixels after PIL's `convert("RGB")` (uint8, height × width
× 3), which is what torchvision's evaluation transform starts from. The decoder must match
these exactly (the JPEGs, whose DCT differs between decoders, within a few levels).

    python3 tools/make_pixel_modes.py      (needs numpy, pillow, safetensors)

The PNGs are written byte by byte here, since PIL cannot write most of these formats.
"""
import os
import struct
import zlib

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "regnet-cli", "tests", "images", "modes")
WIDTH, HEIGHT = 16, 4


def png(samples, color_type, bit_depth, palette=None, transparency=None):
    """A PNG of `samples` (height × width × channels, one sample per entry) as stored."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = samples.shape[:2]
    rows = samples.reshape(height, -1)
    if bit_depth == 16:
        packed = [row.astype(">u2").tobytes() for row in rows]
    elif bit_depth == 8:
        packed = [row.astype("u1").tobytes() for row in rows]
    else:
        bits = np.unpackbits(rows.astype("u1")[:, :, None], axis=2)[:, :, 8 - bit_depth:]
        packed = [np.packbits(row.reshape(-1)).tobytes() for row in bits]
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    if palette is not None:
        data += chunk(b"PLTE", palette)
    if transparency is not None:
        data += chunk(b"tRNS", transparency)
    data += chunk(b"IDAT", zlib.compress(b"".join(b"\0" + row for row in packed)))
    return data + chunk(b"IEND", b"")


def ramp(top, channels):
    """Values spread over 0..top, with 16-bit values around the 8-bit boundaries included."""
    values = np.linspace(0, top, WIDTH * HEIGHT * channels).round().astype(np.int64)
    if top == 65535:
        values[: 12] = [0, 1, 127, 128, 255, 256, 257, 0x7F7F, 0x7FFF, 0x8000, 0x80FF, 65535]
    rng = np.random.default_rng(channels)
    return rng.permutation(values).reshape(HEIGHT, WIDTH, channels)


images = {
    "gray16.png": png(ramp(65535, 1), 0, 16),
    "gray16_transparent.png": png(ramp(65535, 1), 0, 16, transparency=struct.pack(">H", 0x8000)),
    "gray_alpha16.png": png(ramp(65535, 2), 4, 16),
    "rgb16.png": png(ramp(65535, 3), 2, 16),
    "rgb16_transparent.png": png(ramp(65535, 3), 2, 16, transparency=struct.pack(">HHH", 0, 1, 2)),
    "rgba16.png": png(ramp(65535, 4), 6, 16),
    "gray1.png": png(ramp(1, 1), 0, 1),
    "gray2.png": png(ramp(3, 1), 0, 2),
    "gray4.png": png(ramp(15, 1), 0, 4),
    "gray8_transparent.png": png(ramp(255, 1), 0, 8, transparency=struct.pack(">H", 128)),
    "gray_alpha8.png": png(ramp(255, 2), 4, 8),
    "rgba8.png": png(ramp(255, 4), 6, 8),
    "palette4_transparent.png": png(
        ramp(15, 1), 3, 4, palette=bytes(range(0, 240, 5)), transparency=bytes([0, 64, 128])
    ),
    "palette8.png": png(ramp(255, 1) % 7, 3, 8, palette=bytes(range(100, 121))),
}
os.makedirs(OUT, exist_ok=True)
for name, data in images.items():
    with open(os.path.join(OUT, name), "wb") as file:
        file.write(data)
# PIL writes CMYK JPEGs as Adobe's inverted CMYK, as Photoshop does.
cmyk = np.concatenate([ramp(255, 3), 255 - ramp(255, 1)], axis=2).astype(np.uint8)
Image.fromarray(np.repeat(np.repeat(cmyk, 4, 0), 4, 1), "CMYK").save(
    os.path.join(OUT, "cmyk.jpg"), quality=95
)
# JPEGs whose marker structure differs from a plain baseline one: several scans with tables
# between them, and restart markers inside the entropy-coded data.
photo = Image.fromarray(np.repeat(np.repeat(ramp(255, 3), 4, 0), 4, 1).astype(np.uint8), "RGB")
photo.save(os.path.join(OUT, "progressive.jpg"), quality=95, progressive=True)
photo.save(os.path.join(OUT, "restarts.jpg"), quality=95, restart_marker_blocks=1)
names = sorted(os.listdir(OUT))
save_file(
    {
        name: np.ascontiguousarray(np.asarray(Image.open(os.path.join(OUT, name)).convert("RGB")))
        for name in names
        if name != "expected.safetensors"
    },
    os.path.join(OUT, "expected.safetensors"),
)
