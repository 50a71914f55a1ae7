"""Frames -> clip bytes with ffmpeg-python, reproducibly (pinned threads, no metadata)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from functools import lru_cache

import ffmpeg
import numpy as np

from pipeline.config import EncodeSettings
from pipeline.errors import EncodeError

# Container and codec arguments for each --format.
FORMATS = {
    "mp4": {"vcodec": "libx264", "pix_fmt": "yuv420p", "movflags": "+faststart"},
    "webm": {"vcodec": "libvpx-vp9", "pix_fmt": "yuv420p", "row-mt": 0},
    "gif": {"vcodec": "gif"},
}


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The static ffmpeg shipped in the imageio-ffmpeg wheel (or PROMPTREEL_FFMPEG)."""
    override = os.environ.get("PROMPTREEL_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def frames_sha256(frames: np.ndarray) -> str:
    """Hash of the raw uint8 frames (F, H, W, 3), C order, as the catalog records it."""
    return hashlib.sha256(np.ascontiguousarray(frames, dtype=np.uint8).tobytes()).hexdigest()


def output_args(settings: EncodeSettings) -> dict:
    args = dict(FORMATS[settings.format])
    if settings.format == "mp4":
        args.update(vcodec=settings.codec, pix_fmt=settings.pix_fmt, crf=settings.crf)
        args["preset"] = settings.preset
    elif settings.format == "webm":
        args.update(crf=settings.crf, **{"b:v": 0})
    # Same frames -> same bytes: pinned encoder threads, no version string or metadata.
    args.update(threads=settings.threads, map_metadata=-1, fflags="+bitexact")
    args["flags:v"] = "+bitexact"
    return args


def encode_clip(
    frames: np.ndarray, fps: float, settings: EncodeSettings, extra_args: dict | None = None
) -> bytes:
    """Encode uint8 frames (F, H, W, 3) to a clip in `settings.format`; raise EncodeError."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise EncodeError(f"expected uint8 frames (F, H, W, 3), got {frames.dtype} {frames.shape}")
    count, height, width, _ = frames.shape
    # MP4 needs a seekable output for its index: encode to a private temp file.
    with tempfile.TemporaryDirectory(prefix="promptreel-enc-") as workdir:
        target = os.path.join(workdir, f"clip.{settings.format}")
        stream = ffmpeg.input(
            "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps
        ).output(target, **{**output_args(settings), **(extra_args or {})})
        try:
            stream.run(
                cmd=ffmpeg_exe(),
                input=np.ascontiguousarray(frames).tobytes(),
                capture_stdout=True,
                capture_stderr=True,
                quiet=True,
            )
        except ffmpeg.Error as exc:
            stderr = (exc.stderr or b"").decode("utf-8", "replace")
            raise EncodeError(f"ffmpeg failed encoding {count} frames", stderr) from exc
        except OSError as exc:
            raise EncodeError(f"cannot run ffmpeg at {ffmpeg_exe()!r}: {exc}") from exc
        with open(target, "rb") as handle:
            return handle.read()


def decode_clip(data: bytes) -> np.ndarray:
    """Decode a clip back to uint8 RGB frames (F, H, W, 3); used by verify and tests."""
    with tempfile.NamedTemporaryFile(suffix=".clip") as handle:
        handle.write(data)
        handle.flush()
        try:
            out, err = (
                ffmpeg.input(handle.name)
                .output("pipe:", format="rawvideo", pix_fmt="rgb24")
                .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True, quiet=True)
            )
        except ffmpeg.Error as exc:
            stderr = (exc.stderr or b"").decode("utf-8", "replace")
            raise EncodeError("ffmpeg cannot decode the clip", stderr) from exc
    # imageio-ffmpeg ships no ffprobe: read the size from ffmpeg's stream description.
    match = _VIDEO_SIZE.search(err.decode("utf-8", "replace"))
    if match is None:
        raise EncodeError("ffmpeg reported no video stream", err.decode("utf-8", "replace"))
    width, height = int(match.group(1)), int(match.group(2))
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)


_VIDEO_SIZE = re.compile(r"Stream #0:\d.*?Video: .*?(\d{2,5})x(\d{2,5})")
