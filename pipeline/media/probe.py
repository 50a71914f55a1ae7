"""Is this an image a render can use, and decoding it exactly like diffusers' load_image.

probe_image reads the header first and refuses what must never be decoded (too many
pixels: a decompression bomb) or what load_image would silently mangle (animations,
16-bit and float modes), then decodes once so that truncated or corrupt files are
refused before any GPU time. decode_image is load_image for bytes: the same Pillow
calls, so the pixels are identical.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.media.source import MediaError, MediaLimits, sha256_hex

# EXIF orientations that swap width and height (transpose, rotate 90/270, transverse).
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
ORIENTATION_TAG = 0x0112
# Multi-picture JPEGs (phone cameras: a preview or depth map after the photo) are stills:
# load_image uses frame 0, the photo.
STILL_MULTIFRAME_FORMATS = frozenset({"MPO"})


@dataclass(frozen=True)
class ImageInfo:
    width: int  # after EXIF orientation
    height: int
    format: str  # "JPEG", "PNG", "WEBP", ... as Pillow names it ("MPO" for multi-picture JPEG)
    mode: str  # Pillow mode as stored ("RGB", "RGBA", "CMYK", "L", "P", ...)
    bytes: int
    sha256: str  # of the file's bytes


def is_deep_mode(mode: str) -> bool:
    """16-bit integer and float modes, which convert("RGB") clips to garbage."""
    return mode in ("I", "F") or mode.startswith(("I;", "F;"))


def _pil_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _open(data: bytes) -> Image.Image:
    """Image.open (header only), with Pillow's own bomb check made an error, not a warning."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(
            f"too many pixels to decode safely, a decompression bomb or a huge image "
            f"({_pil_text(exc)}); it was not decoded"
        ) from None
    except UnidentifiedImageError:
        raise MediaError(f"not an image: the bytes look like {sniff(data)}") from None
    except Exception as exc:  # Pillow plugins raise SyntaxError, struct.error, ...
        raise MediaError(f"not a readable image: {_pil_text(exc)}") from None


def _check_header(img: Image.Image, limits: MediaLimits, field: str) -> None:
    width, height = img.size
    if width * height > limits.max_pixels:
        raise MediaError(
            f"{width}x{height} is {width * height} pixels, over the {limits.max_pixels} limit "
            "(a decompression bomb or a huge image); it was not decoded"
        )
    if min(width, height) < limits.min_side:
        raise MediaError(
            f"{width}x{height} is too small: each side must be at least {limits.min_side} pixels"
        )
    if img.format not in STILL_MULTIFRAME_FORMATS and getattr(img, "is_animated", False):
        frames = getattr(img, "n_frames", "several")
        raise MediaError(
            f"animated or multi-frame {img.format} ({frames} frames); {field} needs a still "
            "image (export the frame you want as PNG or JPEG)"
        )
    if is_deep_mode(img.mode):
        raise MediaError(
            f"16-bit or float pixels (mode {img.mode}) would be clipped when converted to "
            "RGB; convert the image to 8-bit first"
        )


def _decode_check(img: Image.Image) -> None:
    """Decode every byte once; truncated or corrupt data raises here."""
    if img.format in ("JPEG", "MPO"):
        # DCT scaling still entropy-decodes the whole stream (so truncation is caught) but
        # skips most of the inverse transform: a fraction of a full decode's cost.
        width, height = img.size
        img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
    try:
        img.load()
    except Exception as exc:  # OSError("image file is truncated"), SyntaxError, zlib.error...
        raise MediaError(f"corrupt or truncated {img.format} data: {_pil_text(exc)}") from None


def probe_image(data: bytes, limits: MediaLimits, field: str = "image") -> ImageInfo:
    """Validate an image's bytes before any GPU time; MediaError (not retriable) if unusable."""
    if not data:
        raise MediaError("empty file")
    if len(data) > limits.max_bytes:
        raise MediaError(f"{len(data)} bytes, over the {limits.max_bytes}-byte limit")
    img = _open(data)
    with img:
        _check_header(img, limits, field)
        width, height, mode, fmt = img.width, img.height, img.mode, img.format
        _decode_check(img)
        # After load(): a PNG's eXIf chunk may follow the pixel data.
        orientation = img.getexif().get(ORIENTATION_TAG, 1)
    if orientation in SWAPPING_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(width, height, fmt or "", mode, len(data), sha256_hex(data))


def decode_image(data: bytes) -> Image.Image:
    """What diffusers.utils.load_image returns for the same file: exif_transpose, then
    convert("RGB") (Pillow's own handling of alpha, palettes and CMYK, unchanged)."""
    image = Image.open(io.BytesIO(data))
    image = ImageOps.exif_transpose(image)
    return image.convert("RGB")


def sniff(data: bytes) -> str:
    """What non-image bytes look like, from their first bytes (cheap, best effort)."""
    head = data[:512]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif", b"avis"):
            return "a HEIC/AVIF image, which this Pillow cannot read; convert it to PNG or JPEG"
        if brand.startswith(b"qt"):
            return "a QuickTime video"
        return "an MP4 video"
    for magic, what in (
        (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a zip archive"),
        (b"\x1f\x8b", "gzip data"),
        (b"OggS", "an Ogg audio/video file"),
        (b"ID3", "an MP3 audio file"),
        (b"fLaC", "a FLAC audio file"),
    ):
        if head.startswith(magic):
            return what
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"WAVE"):
        return "an AVI video" if head[8:12] == b"AVI " else "a WAV audio file"
    lowered = head.lstrip().lower()
    if b"<svg" in lowered:
        return "an SVG image (vector images are not supported; rasterize it to PNG)"
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return "an HTML page (a web page, not the image itself?)"
    if _looks_like_text(head):
        return "text"
    return "no known format"


def _looks_like_text(head: bytes) -> bool:
    # "replace" so that a character cut by the 512-byte window costs one symbol, not the verdict
    text = head.decode("utf-8", errors="replace")
    readable = sum((ch.isprintable() and ch != "\ufffd") or ch in "\r\n\t" for ch in text)
    return bool(text) and readable >= 0.95 * len(text)
