"""Writers of test media files, ordinary and hostile, into a directory.

Each function writes one file and returns its path. Pixel content is a deterministic
pattern with no symmetry, so a wrong rotation, channel order or crop shows.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42"


def pattern(width: int, height: int, channels: int = 3) -> np.ndarray:
    """uint8 (height, width, channels): gradients plus a bright block near the top-left."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [
        (x * 255 // max(1, width - 1)),
        (y * 255 // max(1, height - 1)),
        ((x * 7 + y * 13) % 256),
        ((x + y) * 255 // max(1, width + height - 2)),
    ]
    array = np.stack(planes[:channels], axis=-1).astype(np.uint8)
    array[height // 8 : height // 4, width // 8 : width // 4] = 250
    return array


def png_rgb(directory: Path, width: int = 64, height: int = 48, name: str = "rgb.png") -> Path:
    path = Path(directory) / name
    Image.fromarray(pattern(width, height)).save(path, format="PNG")
    return path


def jpeg_rgb(directory: Path, width: int = 64, height: int = 48, name: str = "rgb.jpg") -> Path:
    path = Path(directory) / name
    Image.fromarray(pattern(width, height)).save(path, format="JPEG", quality=90)
    return path


def jpeg_exif_rotated(
    directory: Path, width: int = 64, height: int = 32, name: str = "rotated.jpg"
) -> Path:
    """Stored width x height with EXIF orientation 6: shown rotated, height x width."""
    path = Path(directory) / name
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pattern(width, height)).save(path, format="JPEG", exif=exif.tobytes())
    return path


def png_rgba(directory: Path, width: int = 64, height: int = 48, name: str = "rgba.png") -> Path:
    path = Path(directory) / name
    Image.fromarray(pattern(width, height, channels=4), mode="RGBA").save(path, format="PNG")
    return path


def jpeg_cmyk(directory: Path, width: int = 64, height: int = 48, name: str = "cmyk.jpg") -> Path:
    path = Path(directory) / name
    Image.fromarray(pattern(width, height, channels=4), mode="CMYK").save(path, format="JPEG")
    return path


def png_palette(
    directory: Path, width: int = 64, height: int = 48, name: str = "palette.png"
) -> Path:
    path = Path(directory) / name
    Image.fromarray(pattern(width, height)).quantize(colors=32).save(path, format="PNG")
    return path


def png_gray(directory: Path, width: int = 64, height: int = 48, name: str = "gray.png") -> Path:
    path = Path(directory) / name
    Image.fromarray(pattern(width, height)[..., 0], mode="L").save(path, format="PNG")
    return path


def png_16bit(directory: Path, width: int = 64, height: int = 48, name: str = "deep.png") -> Path:
    """16-bit grayscale (Pillow mode I;16)."""
    path = Path(directory) / name
    array = (pattern(width, height)[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(array).save(path, format="PNG")
    return path


def gif_animated(
    directory: Path, width: int = 32, height: int = 32, name: str = "anim.gif"
) -> Path:
    path = Path(directory) / name
    frames = [Image.new("RGB", (width, height), color) for color in ("red", "green", "blue")]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return path


def png_animated(
    directory: Path, width: int = 32, height: int = 32, name: str = "anim.png"
) -> Path:
    """An APNG with two frames."""
    path = Path(directory) / name
    frames = [Image.new("RGB", (width, height), color) for color in ("red", "blue")]
    frames[0].save(path, format="PNG", save_all=True, append_images=frames[1:], duration=100)
    return path


def png_1x1(directory: Path, name: str = "dot.png") -> Path:
    path = Path(directory) / name
    Image.new("RGB", (1, 1), "white").save(path, format="PNG")
    return path


def truncated_jpeg(directory: Path, name: str = "truncated.jpg") -> Path:
    """The first half of a valid 256x256 JPEG: the header is intact, the scan is cut."""
    whole = jpeg_rgb(directory, 256, 256, name=f"whole-{name}").read_bytes()
    path = Path(directory) / name
    path.write_bytes(whole[: len(whole) // 2])
    return path


def text_file(directory: Path, name: str = "notes.png") -> Path:
    path = Path(directory) / name
    path.write_text("this is not an image, just a note\nsecond line\n")
    return path


def mp4_like(directory: Path, name: str = "clip.png") -> Path:
    path = Path(directory) / name
    path.write_bytes(MP4_HEAD + bytes(1000))
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def forged_png_bytes(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR (with a correct CRC) claims width x height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(64)))
        + _png_chunk(b"IEND", b"")
    )


def png_bomb(
    directory: Path, width: int = 100_000, height: int = 100_000, name: str = "bomb.png"
) -> Path:
    """A decompression bomb's header: a few dozen bytes that claim width x height pixels."""
    path = Path(directory) / name
    path.write_bytes(forged_png_bytes(width, height))
    return path


def moving_frames(width: int, height: int, count: int) -> np.ndarray:
    """uint8 (count, height, width, 3): the pattern shifted one step right per frame."""
    base = pattern(width, height)
    return np.stack([np.roll(base, 3 * i, axis=1) for i in range(count)])


def video_file(
    directory: Path,
    width: int = 32,
    height: int = 32,
    frames: int = 9,
    name: str = "clip.mp4",
) -> Path:
    """A real H.264 mp4 (by our own encoder) of the moving pattern."""
    from pipeline.config import EncodeSettings
    from pipeline.outputs.encode import encode_clip

    path = Path(directory) / name
    path.write_bytes(encode_clip(moving_frames(width, height, frames), 8.0, EncodeSettings()))
    return path


def gif_video(
    directory: Path, width: int = 32, height: int = 32, frames: int = 9, name: str = "clip.gif"
) -> Path:
    path = Path(directory) / name
    images = [Image.fromarray(f) for f in moving_frames(width, height, frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    return path


def ffmpeg_made(directory: Path, name: str, *args: str) -> Path:
    """A file made by the bundled ffmpeg from its lavfi test sources (`args` before the
    output name), e.g. other codecs and containers than our own encoder writes."""
    import subprocess

    import imageio_ffmpeg

    path = Path(directory) / name
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", *args, str(path)]
    subprocess.run(command, check=True, timeout=60)
    return path


def mask_video(
    directory: Path, width: int = 32, height: int = 32, frames: int = 9, name: str = "mask.mp4"
) -> Path:
    """A VACE mask video: white (render anew) on the left half, black (keep) on the right."""
    from pipeline.config import EncodeSettings
    from pipeline.outputs.encode import encode_clip

    mask = np.zeros((frames, height, width, 3), np.uint8)
    mask[:, :, : width // 2] = 255
    path = Path(directory) / name
    path.write_bytes(encode_clip(mask, 8.0, EncodeSettings()))
    return path
