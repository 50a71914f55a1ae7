"""Is this a video a render can use, and decoding it exactly like diffusers' load_video.

A `video` cell (video-to-video's source) is checked before any GPU time: within the byte
limit, a video container (an image is refused, naming what it is), frame size within the
pixel limit read from the stream header (a bomb never decodes), its first frame decodes,
and its frame count (ffmpeg counts packets without decoding: `-c copy`) covers the row.

Decoding is load_video's: ffmpeg (the imageio-ffmpeg binary, as imageio's reader runs it)
writes rgb24 frames to a pipe; an animated GIF is read by Pillow, frame by frame, as
load_video does for `.gif`, then converted to RGB (the pipelines take RGB frames). Only the
frames a row uses are decoded. ffmpeg needs a seekable file (an MP4's index may sit at its
end), so the bytes, already hashed, go to a private temp file first.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.media.probe import sniff
from pipeline.media.source import MediaError, MediaLimits, sha256_hex

GIF_MAGIC = (b"GIF87a", b"GIF89a")
# What imageio-ffmpeg raises when ffmpeg cannot open or decode the stream.
DECODE_ERRORS = (RuntimeError, StopIteration, OSError, ValueError, KeyError)


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    frames: int  # decodable frames (packets of the first video stream)
    fps: float  # 0.0 when the container gives none
    bytes: int
    sha256: str  # of the file's bytes


def is_gif(data: bytes) -> bool:
    return data[:6] in GIF_MAGIC


def probe_video(data: bytes, limits: MediaLimits) -> VideoInfo:
    """Validate a video's bytes before any GPU time; MediaError (not retriable) if unusable."""
    if not data:
        raise MediaError("empty file")
    if len(data) > limits.max_bytes:
        raise MediaError(f"{len(data)} bytes, over the {limits.max_bytes}-byte limit")
    if is_gif(data):
        width, height, frames, fps = _probe_gif(data, limits)
    else:
        if _is_image(data):
            raise MediaError(
                "not a video: the bytes are a still image (give it as `image`, or a video file)"
            )
        with _file(data) as path:
            width, height, fps = _header(path, data, limits)
            frames = _count_frames(path)
    if frames < 1:
        raise MediaError("the video has no frames")
    return VideoInfo(width, height, frames, fps, len(data), sha256_hex(data))


def decode_video(data: bytes, max_frames: int) -> list[Image.Image]:
    """The first `max_frames` frames as load_video gives them (RGB PIL images)."""
    if is_gif(data):
        with Image.open(io.BytesIO(data)) as gif:
            frames = []
            for index in range(min(max_frames, getattr(gif, "n_frames", 1))):
                gif.seek(index)
                frames.append(gif.copy().convert("RGB"))
            return frames
    import imageio_ffmpeg

    with _file(data) as path:
        reader = imageio_ffmpeg.read_frames(path, output_params=["-frames:v", str(max_frames)])
        try:
            meta = next(reader)
            width, height = meta["size"]
            return [
                Image.fromarray(np.frombuffer(raw, np.uint8).reshape(height, width, 3))
                for raw in reader
            ]
        except DECODE_ERRORS as exc:
            raise MediaError(f"the video does not decode: {_first_line(exc)}") from None
        finally:
            reader.close()


def _is_image(data: bytes) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(data)) as img:
                return img.format not in ("GIF",)
        except Exception:  # noqa: BLE001 - not an image: maybe a video
            return False


def _probe_gif(data: bytes, limits: MediaLimits) -> tuple[int, int, int, float]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            gif = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError("too many pixels to decode safely; it was not decoded") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
        raise MediaError(f"not a readable GIF: {_first_line(exc)}") from None
    with gif:
        width, height = gif.size
        _check_size(width, height, limits)
        try:
            frames = gif.n_frames  # walks the file: truncation shows here
            gif.seek(0)
            gif.load()
        except Exception as exc:  # noqa: BLE001
            raise MediaError(f"corrupt or truncated GIF data: {_first_line(exc)}") from None
        duration = gif.info.get("duration")
    return width, height, frames, 1000.0 / duration if duration else 0.0


def _header(path: str, data: bytes, limits: MediaLimits) -> tuple[int, int, float]:
    """Size and fps from ffmpeg's stream header, then one decoded frame (bombs refused on
    the header, before any frame is decoded)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(path, output_params=["-frames:v", "1"])
    try:
        try:
            meta = next(reader)
        except DECODE_ERRORS as exc:
            raise MediaError(
                f"not a readable video (the bytes look like {sniff(data)}): {_first_line(exc)}"
            ) from None
        width, height = meta["size"]
        _check_size(width, height, limits)
        try:
            next(reader)
        except DECODE_ERRORS as exc:
            raise MediaError(f"the video does not decode: {_first_line(exc)}") from None
        return int(width), int(height), float(meta.get("fps") or 0.0)
    finally:
        reader.close()


def _count_frames(path: str) -> int:
    import imageio_ffmpeg

    try:
        return int(imageio_ffmpeg.count_frames_and_secs(path)[0])
    except (RuntimeError, ValueError, OSError) as exc:
        raise MediaError(f"cannot count the video's frames: {_first_line(exc)}") from None


def _check_size(width: int, height: int, limits: MediaLimits) -> None:
    if width * height > limits.max_pixels:
        raise MediaError(
            f"{width}x{height} frames are {width * height} pixels each, over the "
            f"{limits.max_pixels} limit; it was not decoded"
        )
    if min(width, height) < limits.min_side:
        raise MediaError(
            f"{width}x{height} is too small: each side must be at least {limits.min_side} pixels"
        )


@contextmanager
def _file(data: bytes) -> Iterator[str]:
    """The bytes in a private temp file, removed afterwards (nothing of a cell becomes a
    path of ours but this random name)."""
    handle, path = tempfile.mkstemp(prefix="promptreel-video-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        yield path
    finally:
        os.unlink(path)


def _first_line(exc: BaseException) -> str:
    """ffmpeg's telling line (its last), or what it means where that line says little."""
    text = str(exc)
    if "Stream #" in text and "Video:" not in text:
        return "it has no video stream (an audio file?)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
