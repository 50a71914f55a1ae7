"""A small animated poster per clip (in the run dir: `thumbs/<k0k1>/<key>.webp`), at most
160 px on the long side and 24 frames, made by the actor from the same frames as the clip
(never rendered again), written before the item's ledger row and swept like clips."""

from __future__ import annotations

import io
import math

import numpy as np

from pipeline.outputs.encode import Output, bitexact_args, run_ffmpeg

LONG_SIDE = 160  # px; never upscaled
MAX_FRAMES = 24  # every k-th frame, at fps / k: the same duration, a fraction of the bytes
QUALITY = 50  # libwebp lossy quality: ~2-6 KB for 64x64 noise, a preview, not a clip


def thumbnail_size(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, LONG_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def thumbnail_output(shape: tuple[int, ...], fps: float) -> Output:
    """The thumbnail of frames of `shape` (F, H, W, 3), as one more output of the clip's
    ffmpeg run (stdout): every step-th frame, re-timed to fps / step, scaled by area."""
    step = max(1, math.ceil(shape[0] / MAX_FRAMES))
    height, width = thumbnail_size(*shape[1:3])
    rate = fps / step
    filters = f"scale={width}:{height}:flags=area"
    if step > 1:  # the frames 0, step, 2*step, ... at one frame per 1/rate seconds
        filters = f"select=not(mod(n\\,{step})),setpts=N/({rate!r})/TB,{filters}"
    args = {"format": "webp", "vcodec": "libwebp_anim", "lossless": 0, "quality": QUALITY}
    return Output("pipe:", args | {"loop": 0, "r": rate} | bitexact_args(threads=1), filters)


def make_thumbnail(frames: np.ndarray, fps: float) -> bytes:
    """Animated lossy webp of (a subsample of) uint8 frames (F, H, W, 3); EncodeError."""
    ((_, data),) = run_ffmpeg(frames, fps, [thumbnail_output(frames.shape, fps)])[0]
    return data


def png_bytes(image) -> bytes:
    """A PIL image as PNG, with no metadata: the same pixels give the same bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
