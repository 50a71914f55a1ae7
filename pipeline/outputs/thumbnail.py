"""A small animated poster per clip (in the run dir: `thumbs/<k0k1>/<key>.webp`), at most
160 px on the long side and 24 frames, made by the actor from the same frames as the clip
(never rendered again), written before the item's ledger row and swept like clips.

Encoded in-process by Pillow's libwebp, not by a second ffmpeg: measured on 64x64x9 clips
(issue 20), the second process cost ~18 ms CPU per item, as much as the clip's own encode;
Pillow takes ~9 ms at libwebp's default effort, ~5 ms at its least (used). Same size,
frames, timing and quality as the ffmpeg thumbnails were (pixels differ by a few levels:
libwebp's RGB->YUV instead of swscale's)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from pipeline.errors import EncodeError
from pipeline.outputs.encode import check_frames

LONG_SIDE = 160  # px; never upscaled
MAX_FRAMES = 24  # every k-th frame, at fps / k: the same duration, a fraction of the bytes
QUALITY = 50  # libwebp lossy quality: ~2-6 KB for 64x64 noise, a preview, not a clip


def thumbnail_size(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, LONG_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def make_thumbnail(frames: np.ndarray, fps: float) -> bytes:
    """Animated lossy webp of (a subsample of) uint8 frames (F, H, W, 3); EncodeError.
    Deterministic: the same frames give the same bytes with the same libwebp."""
    check_frames(frames)
    step = max(1, math.ceil(len(frames) / MAX_FRAMES))
    height, width = thumbnail_size(*frames.shape[1:3])
    images = [Image.fromarray(frame) for frame in np.ascontiguousarray(frames[::step])]
    if (height, width) != frames.shape[1:3]:  # area averaging, as ffmpeg's flags=area
        images = [image.resize((width, height), Image.Resampling.BOX) for image in images]
    buffer = io.BytesIO()
    try:
        images[0].save(
            buffer,
            format="WEBP",
            save_all=True,
            append_images=images[1:],
            duration=max(1, round(1000 * step / fps)),  # ms per frame: the clip's duration
            loop=0,
            lossless=False,
            quality=QUALITY,
            # libwebp's least effort: half the CPU of its default (4), the same look
            # (PSNR to the frames equal within 0.03 dB on noise and on smooth motion),
            # 5-13% more bytes (measured: bench/README.md, "Thumbnails").
            method=0,
        )
    except (OSError, ValueError) as exc:  # a Pillow built without animated webp, ...
        raise EncodeError(f"cannot write the webp thumbnail: {exc}") from exc
    return buffer.getvalue()


def png_bytes(image) -> bytes:
    """A PIL image as PNG, with no metadata: the same pixels give the same bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
