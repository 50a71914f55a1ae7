"""Encoding with the real ffmpeg from imageio-ffmpeg."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pipeline.config import EncodeSettings
from pipeline.errors import EncodeError
from pipeline.outputs.encode import decode_clip, encode_clip, frames_sha256


@pytest.fixture
def frames():
    return np.random.default_rng(0).integers(0, 256, (9, 64, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["mp4", "webm", "gif"])
def test_roundtrip_shape_and_reproducible_bytes(frames, fmt):
    settings = EncodeSettings(format=fmt)
    data = encode_clip(frames, 8, settings)
    assert (
        hashlib.sha256(data).digest() == hashlib.sha256(encode_clip(frames, 8, settings)).digest()
    )
    assert decode_clip(data).shape == frames.shape


def test_mp4_has_no_ffmpeg_version_string(frames):
    """-fflags +bitexact drops "Lavf61.x" / "Lavc61.x" (x264's own SEI stays: same build)."""
    import re

    data = encode_clip(frames, 8, EncodeSettings())
    assert re.search(rb"Lav[fc]\d", data) is None


def test_ffmpeg_failure_is_typed_and_carries_stderr(frames):
    with pytest.raises(EncodeError) as info:
        encode_clip(frames, 8, EncodeSettings(), {"vcodec": "no-such-codec"})
    assert "no-such-codec" in info.value.stderr
    assert "Unknown encoder" in str(info.value)


def test_rejects_non_uint8_frames(frames):
    with pytest.raises(EncodeError, match="uint8"):
        encode_clip(frames.astype(np.float32), 8, EncodeSettings())


def test_frames_sha256_is_over_raw_c_order_bytes(frames):
    assert frames_sha256(frames) == hashlib.sha256(frames.tobytes()).hexdigest()
    assert frames_sha256(np.asfortranarray(frames)) == frames_sha256(frames)
