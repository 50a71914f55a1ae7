"""Fitting a conditioning image to the render size, and deriving a size from an image.

A same-size image is returned untouched (the very object), so a row whose image already
has the render size gets exactly the pixels a plain diffusers call would. All resizing is
Pillow LANCZOS on integer boxes: deterministic for the same Pillow.
"""

from __future__ import annotations

import math

from PIL import Image

RESIZE_POLICIES = ("crop", "pad", "stretch")  # "crop" is the default
LANCZOS = Image.Resampling.LANCZOS
# Modes whose 0 is black and which paste without a palette; others become RGB to be padded.
PAD_MODES = frozenset({"RGB", "RGBA", "L", "LA"})


def _round_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, in integers (no float surprises)."""
    return (2 * numerator + denominator) // (2 * denominator)


def crop_box(size: tuple[int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """The centred box of `size` with the target aspect ratio. The kept side is rounded half
    up; when the margin is odd, the extra pixel is cut from the right or bottom."""
    src_w, src_h = size
    if src_w * height > src_h * width:  # wider than the target: cut left and right
        box_w, box_h = min(src_w, max(1, _round_div(src_h * width, height))), src_h
    else:  # taller (or the same aspect): cut top and bottom
        box_w, box_h = src_w, min(src_h, max(1, _round_div(src_w * height, width)))
    left, top = (src_w - box_w) // 2, (src_h - box_h) // 2
    return left, top, left + box_w, top + box_h


def inner_size(size: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """The largest size with `size`'s aspect that fits inside (width, height)."""
    src_w, src_h = size
    if src_w * height >= src_h * width:  # limited by the width
        return width, min(height, max(1, _round_div(src_h * width, src_w)))
    return min(width, max(1, _round_div(src_w * height, src_h))), height


def fit_image(image: Image.Image, width: int, height: int, policy: str = "crop") -> Image.Image:
    """`image` at exactly (width, height): crop (centre-crop to the aspect, then resize),
    pad (resize to fit inside, centred on black) or stretch (resize, aspect ignored)."""
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; expected one of {RESIZE_POLICIES}")
    if width < 1 or height < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    if image.size == (width, height):
        return image  # the same object: pixel parity with a plain diffusers call
    if policy == "stretch":
        return image.resize((width, height), LANCZOS)
    if policy == "crop":
        return image.resize((width, height), LANCZOS, box=crop_box(image.size, width, height))
    return _pad(image, width, height)


def _pad(image: Image.Image, width: int, height: int) -> Image.Image:
    if image.mode not in PAD_MODES:
        image = image.convert("RGB")
    inner = inner_size(image.size, width, height)
    resized = image if image.size == inner else image.resize(inner, LANCZOS)
    canvas = Image.new(image.mode, (width, height), 0)  # black (transparent black for alpha)
    canvas.paste(resized, ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas


def derive_size(image_width: int, image_height: int, area: int, multiple: int) -> tuple[int, int]:
    """(height, width) with the image's aspect ratio at `area` pixels, each a multiple of
    `multiple` (never below it), as the Wan I2V model card computes it."""
    if min(image_width, image_height, area, multiple) < 1:
        raise ValueError(
            f"derive_size needs positive numbers, got image {image_width}x{image_height}, "
            f"area {area}, multiple {multiple}"
        )
    aspect = image_height / image_width
    height = round(math.sqrt(area * aspect)) // multiple * multiple
    width = round(math.sqrt(area / aspect)) // multiple * multiple
    return max(multiple, height), max(multiple, width)
