"""probe_image accepts usable images and refuses hostile ones; decode_image == load_image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from pipeline.media.probe import ImageInfo, decode_image, probe_image, sniff
from pipeline.media.source import MediaError, MediaLimits, sha256_hex
from tests.support import media_files as mf

LIMITS = MediaLimits()


def probe(path, limits=LIMITS) -> ImageInfo:
    return probe_image(path.read_bytes(), limits)


def refused(path, limits=LIMITS) -> MediaError:
    with pytest.raises(MediaError) as caught:
        probe(path, limits)
    assert caught.value.retriable is False
    return caught.value


@pytest.fixture
def no_decode(monkeypatch):
    """Any pixel decode fails the test: a bomb must be refused from its header alone."""

    def load(self):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.parametrize(
    ("write", "size", "fmt", "mode"),
    [
        (mf.png_rgb, (64, 48), "PNG", "RGB"),
        (mf.jpeg_rgb, (64, 48), "JPEG", "RGB"),
        (mf.png_rgba, (64, 48), "PNG", "RGBA"),
        (mf.jpeg_cmyk, (64, 48), "JPEG", "CMYK"),
        (mf.png_palette, (64, 48), "PNG", "P"),
        (mf.png_gray, (64, 48), "PNG", "L"),
        (mf.jpeg_exif_rotated, (32, 64), "JPEG", "RGB"),  # stored 64x32, orientation 6
    ],
)
def test_accepts_usable_images(tmp_path, write, size, fmt, mode):
    path = write(tmp_path)
    info = probe(path)
    data = path.read_bytes()
    assert (info.width, info.height) == size
    assert (info.format, info.mode) == (fmt, mode)
    assert info.bytes == len(data) and info.sha256 == sha256_hex(data)


@pytest.mark.parametrize(
    ("write", "fragment"),
    [
        (mf.png_16bit, "convert the image to 8-bit"),
        (mf.gif_animated, "needs a still image"),
        (mf.png_animated, "needs a still image"),
        (mf.png_1x1, "too small"),
        (mf.truncated_jpeg, "truncated"),
        (mf.text_file, "look like text"),
        (mf.mp4_like, "look like an MP4 video"),
    ],
)
def test_refuses_unusable_files(tmp_path, write, fragment):
    message = str(refused(write(tmp_path)))
    assert fragment in message
    assert not message[0].isupper()


def test_animated_message_names_the_frames_and_field(tmp_path):
    data = mf.gif_animated(tmp_path).read_bytes()
    with pytest.raises(MediaError, match=r"GIF \(3 frames\); last_image needs a still image"):
        probe_image(data, LIMITS, field="last_image")


def test_bomb_refused_from_the_header_by_our_limit(tmp_path, no_decode):
    # 8000x8000 is under Pillow's own bomb threshold: our max_pixels must catch it.
    message = str(refused(mf.png_bomb(tmp_path, 8000, 8000)))
    assert "64000000 pixels, over the 40000000 limit" in message
    assert "not decoded" in message


def test_bomb_refused_by_pillows_check_even_with_a_high_limit(tmp_path, no_decode):
    path = mf.png_bomb(tmp_path)  # claims 100000x100000
    assert len(path.read_bytes()) < 200
    message = str(refused(path, MediaLimits(max_pixels=10**12)))
    assert "decompression bomb" in message and "not decoded" in message


def test_pixel_limit_is_width_times_height(tmp_path):
    path = mf.png_rgb(tmp_path, 100, 50)
    assert probe(path, MediaLimits(max_pixels=5000)).width == 100
    assert "over the 4999 limit" in str(refused(path, MediaLimits(max_pixels=4999)))


def test_min_side_applies_to_either_side(tmp_path):
    path = mf.png_rgb(tmp_path, 64, 15)
    assert "at least 16 pixels" in str(refused(path))
    assert probe(path, MediaLimits(min_side=15)).height == 15


def test_byte_limit_and_empty_data(tmp_path):
    data = mf.png_rgb(tmp_path).read_bytes()
    with pytest.raises(MediaError, match="byte limit"):
        probe_image(data, MediaLimits(max_bytes=len(data) - 1))
    with pytest.raises(MediaError, match="empty file"):
        probe_image(b"", LIMITS)


def test_corrupt_png_data_is_refused(tmp_path):
    data = bytearray(mf.png_rgb(tmp_path).read_bytes())
    data[60:80] = bytes(20)  # inside the IDAT chunk: the CRC and the zlib stream break
    with pytest.raises(MediaError) as caught:
        probe_image(bytes(data), LIMITS)
    assert not caught.value.retriable


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"\x1aE\xdf\xa3" + bytes(20), "Matroska/WebM"),
        (b"%PDF-1.7\n", "PDF"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "SVG"),
        (b"<!DOCTYPE html><html></html>", "HTML page"),
        (bytes(range(256)) * 2, "no known format"),
    ],
)
def test_sniff_names_what_the_bytes_look_like(head, what):
    assert what in sniff(head)


@pytest.mark.parametrize(
    "write",
    [
        mf.jpeg_rgb,
        mf.jpeg_exif_rotated,
        mf.png_rgba,
        mf.jpeg_cmyk,
        mf.png_palette,
        mf.png_gray,
        mf.png_rgb,
    ],  # fmt: skip
)
def test_decode_image_matches_diffusers_load_image(tmp_path, write):
    from diffusers.utils import load_image

    path = write(tmp_path)
    ours = decode_image(path.read_bytes())
    theirs = load_image(str(path))
    assert ours.mode == theirs.mode == "RGB"
    assert ours.size == theirs.size
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_decode_image_applies_exif_orientation(tmp_path):
    image = decode_image(mf.jpeg_exif_rotated(tmp_path).read_bytes())
    assert image.size == (32, 64)
    # the bright block was near the stored top-left; orientation 6 turns it to the top-right
    with Image.open(tmp_path / "rotated.jpg") as stored:
        assert np.asarray(stored.convert("RGB"))[6, 12].min() > 200
    assert np.asarray(image)[12, 32 - 1 - 6].min() > 200
