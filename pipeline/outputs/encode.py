"""Frames -> clip bytes with ffmpeg-python, reproducibly (pinned threads, no metadata).

Formats: mp4 (H.264), webm (VP9), gif, webp (animated), png (the frames as PNGs in one
zip per clip). The same frames give the same bytes with the same ffmpeg build. A process
start costs more than a small clip's encode (measured, issue 20): a batch's small clips
share one ffmpeg (encode_many.py, the same bytes per clip) and the thumbnail is made
in-process.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from functools import lru_cache

import ffmpeg
import numpy as np

from pipeline.config import EncodeSettings
from pipeline.errors import ConfigError, EncodeError
from pipeline.outputs import frame_zip
from pipeline.outputs.audio import Audio

# Container and codec arguments for each --format.
FORMATS = {
    "mp4": {"vcodec": "libx264", "pix_fmt": "yuv420p", "movflags": "+faststart"},
    "webm": {"vcodec": "libvpx-vp9", "pix_fmt": "yuv420p", "row-mt": 0},
    "gif": {"vcodec": "gif"},
    # Lossy at libwebp's default quality; loop 0 plays forever like a gif.
    "webp": {"vcodec": "libwebp_anim", "lossless": 0, "quality": 75, "loop": 0},
    "png": {"vcodec": "png", "pix_fmt": "rgb24", "compression_level": 6, "start_number": 0},
}
# File extension of each format's clip (png: one zip of 00000.png, 00001.png, ...).
EXTENSIONS = {name: name for name in FORMATS} | {"png": "png.zip"}


def clip_extension(fmt: str) -> str:
    return EXTENSIONS[fmt]


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
    return args | bitexact_args(settings.threads)


def bitexact_args(threads: int) -> dict:
    """Same frames -> same bytes: pinned encoder threads, no version string or metadata."""
    return {"threads": threads, "map_metadata": -1, "fflags": "+bitexact", "flags:v": "+bitexact"}


# The sound's codec per container that carries one (reproducible: bitexact, one thread).
AUDIO_ARGS = {
    "mp4": {"acodec": "aac", "b:a": "192k", "flags:a": "+bitexact"},
    "webm": {"acodec": "libopus", "b:a": "128k", "flags:a": "+bitexact"},
}
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)  # libopus takes no other (it resamples none)


def encode_clip(
    frames: np.ndarray,
    fps: float,
    settings: EncodeSettings,
    extra_args: dict | None = None,
    audio: Audio | None = None,
) -> bytes:
    """Encode uint8 frames (F, H, W, 3), and their sound if any, to a clip in
    `settings.format`; raise EncodeError."""
    args = {**output_args(settings), **(extra_args or {})}
    if audio is not None:
        args |= audio_args(settings.format, audio)
    if settings.format in STREAMABLE:
        return run_ffmpeg(frames, fps, "pipe:", args | {"format": settings.format})[0][1]
    written = run_ffmpeg(frames, fps, file_target(settings.format), args, audio)
    return clip_of(written, settings.format)


def file_target(fmt: str) -> str:
    """The name ffmpeg writes a `fmt` clip to, in a folder of its own (png: a frame each)."""
    return "%05d.png" if fmt == "png" else f"clip.{fmt}"


def clip_of(written: list[tuple[str, bytes]], fmt: str) -> bytes:
    """The clip's bytes from what ffmpeg wrote to its folder (png: the frames zipped)."""
    return frame_zip.pack(written) if fmt == "png" else written[0][1]


def read_folder(folder: str) -> list[tuple[str, bytes]]:
    """[(name, bytes)] of every file in `folder`, sorted by name."""
    written = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as handle:
            written.append((name, handle.read()))
    return written


def check_sound(settings: EncodeSettings, families) -> None:
    """ConfigError (exit 2, before any render) when a family of the run renders sound and
    the format cannot carry it, unless --no-audio drops it on purpose."""
    loud = sorted(f.name for f in families if f.audio_of is not None)
    if loud and settings.audio and settings.format not in AUDIO_ARGS:
        raise ConfigError(
            f"--format {settings.format} carries no sound, and {', '.join(loud)} renders "
            "clips with sound: use --format mp4 (AAC) or webm (Opus), or --no-audio to drop it"
        )


def audio_args(fmt: str, audio: Audio) -> dict:
    if fmt not in AUDIO_ARGS:  # validate refuses such a run first (or --no-audio)
        raise EncodeError(f"--format {fmt} carries no sound: use mp4 or webm, or --no-audio")
    args = dict(AUDIO_ARGS[fmt])
    if fmt == "webm" and audio.rate not in OPUS_RATES:
        args["ar"] = 48000  # resampled by ffmpeg: the same samples give the same bytes
    return args


# Muxers that never seek back write to stdout: no temp dir (same bytes, measured). MP4
# seeks for its index (+faststart), webm for its cues, png writes one file per frame.
STREAMABLE = frozenset({"gif", "webp"})


def run_ffmpeg(
    frames: np.ndarray, fps: float, target: str, args: dict, audio: Audio | None = None
) -> list[tuple[str, bytes]]:
    """Feed raw frames to one ffmpeg writing `target`: "pipe:" (stdout), or a name or an
    image pattern in a private temp dir; return [(name, bytes)] it wrote, sorted by name.
    `audio` (a file target only) is muxed in from a raw f32le file beside the output dir."""
    check_frames(frames)
    if target == "pipe:":
        return [(target, _ffmpeg(frames, fps, target, args))]
    with tempfile.TemporaryDirectory(prefix="promptreel-enc-") as workdir:
        out = os.path.join(workdir, "out")
        os.mkdir(out)
        sound = None
        if audio is not None:
            sound = ffmpeg.input(
                _written(os.path.join(workdir, "audio.f32"), audio.interleaved()),
                format="f32le",
                ac=audio.channels,
                ar=audio.rate,
            )
        _ffmpeg(frames, fps, os.path.join(out, target), args, sound)
        return read_folder(out)


def _written(path: str, data: bytes) -> str:
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def check_frames(frames: np.ndarray) -> None:
    """EncodeError unless `frames` is a clip: uint8 (F, H, W, 3) with at least one frame."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise EncodeError(f"expected uint8 frames (F, H, W, 3), got {frames.dtype} {frames.shape}")


def _ffmpeg(frames: np.ndarray, fps: float, target: str, args: dict, sound=None) -> bytes:
    """Run ffmpeg on the frames (stdin), and a sound input if given, writing `target`;
    its stdout."""
    count, height, width, _ = frames.shape
    video = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps
    )
    stream = ffmpeg.output(*([video] if sound is None else [video, sound]), target, **args)
    return run_graph(stream, np.ascontiguousarray(frames).tobytes(), f"{count} frames")


def run_graph(stream, data: bytes, what: str) -> bytes:
    """Run an ffmpeg-python graph with `data` on its stdin; its stdout. EncodeError (with
    ffmpeg's stderr) naming `what` it was encoding."""
    try:
        stdout, _ = stream.run(
            cmd=ffmpeg_exe(), input=data, capture_stdout=True, capture_stderr=True, quiet=True
        )
    except ffmpeg.Error as exc:
        stderr = (exc.stderr or b"").decode("utf-8", "replace")
        raise EncodeError(f"ffmpeg failed encoding {what}", stderr) from exc
    except OSError as exc:
        raise EncodeError(f"cannot run ffmpeg at {ffmpeg_exe()!r}: {exc}") from exc
    return stdout


def decode_clip(data: bytes) -> np.ndarray:
    """Decode a clip back to uint8 RGB frames (F, H, W, 3); used by verify and tests."""
    data, source = _decodable(data)
    with tempfile.NamedTemporaryFile(suffix=".clip") as handle:
        handle.write(data)
        handle.flush()
        try:
            out, err = (
                ffmpeg.input(handle.name, **source)
                .output("pipe:", format="rawvideo", pix_fmt="rgb24")
                .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True, quiet=True)
            )
        except ffmpeg.Error as exc:
            stderr = (exc.stderr or b"").decode("utf-8", "replace")
            raise EncodeError("ffmpeg cannot decode the clip", stderr) from exc
    height, width = _input_size(err.decode("utf-8", "replace"), 0)
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)


def decode_clips(clips: list[bytes]) -> list[np.ndarray]:
    """decode_clip of each clip (its only video stream), all in one ffmpeg process: a
    process start costs more than a small clip's decode (issue 17: the scorer decoded one
    clip per process). EncodeError if any fails: decode them alone to name it."""
    if len(clips) == 1:
        return [decode_clip(clips[0])]
    with tempfile.TemporaryDirectory(prefix="promptreel-dec-") as workdir:
        outputs = []
        for number, data in enumerate(clips):
            data, source = _decodable(data)
            path = os.path.join(workdir, f"{number}.clip")
            with open(path, "wb") as handle:
                handle.write(data)
            raw = os.path.join(workdir, f"{number}.rgb")
            stream = ffmpeg.input(path, **source)["v:0"]  # mapped: never another input's
            outputs.append(stream.output(raw, format="rawvideo", pix_fmt="rgb24"))
        try:
            _, err = ffmpeg.merge_outputs(*outputs).run(
                cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True, quiet=True
            )
        except ffmpeg.Error as exc:
            stderr = (exc.stderr or b"").decode("utf-8", "replace")
            raise EncodeError(f"ffmpeg cannot decode the {len(clips)} clips", stderr) from exc
        described = err.decode("utf-8", "replace")
        frames = []
        for number in range(len(clips)):
            height, width = _input_size(described, number)
            with open(os.path.join(workdir, f"{number}.rgb"), "rb") as handle:
                frames.append(np.frombuffer(handle.read(), np.uint8).reshape(-1, height, width, 3))
        return frames


def _decodable(data: bytes) -> tuple[bytes, dict]:
    """(bytes ffmpeg reads, input options): --format png's zip becomes an image2pipe."""
    if frame_zip.is_zip(data):
        return b"".join(frame_zip.unpack(data).values()), {"format": "image2pipe", "vcodec": "png"}
    return data, {}


def _input_size(described: str, number: int) -> tuple[int, int]:
    """(height, width) of input `number`'s video, from ffmpeg's stream description
    (imageio-ffmpeg ships no ffprobe); the inputs are described before any output."""
    inputs = described.split("\nOutput #", 1)[0]
    pattern = rf"Stream #{number}:\d.*?Video: .*?(\d{{2,5}})x(\d{{2,5}})"
    match = re.search(pattern, inputs)
    if match is None:
        raise EncodeError("ffmpeg reported no video stream", described)
    return int(match.group(2)), int(match.group(1))
