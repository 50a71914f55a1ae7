"""Encoding with the real ffmpeg from imageio-ffmpeg."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pipeline.config import EncodeSettings, RenderSettings
from pipeline.errors import EncodeError
from pipeline.outputs import frame_zip
from pipeline.outputs.encode import clip_extension, decode_clip, encode_clip, frames_sha256
from pipeline.rundir.jobjson import fingerprint_differences, job_fingerprint


@pytest.fixture
def frames():
    return np.random.default_rng(0).integers(0, 256, (9, 64, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["mp4", "webm", "gif", "webp", "png"])
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


def test_png_archive_is_lossless_with_fixed_member_names_and_times(frames):
    import io
    import zipfile

    data = encode_clip(frames, 8, EncodeSettings(format="png"))
    assert np.array_equal(decode_clip(data), frames)  # PNG is lossless: the frames exactly
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == [f"{n:05d}.png" for n in range(len(frames))]
    assert {i.date_time for i in infos} == {frame_zip.FIXED_TIME}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_STORED}
    assert clip_extension("png") == "png.zip" and clip_extension("webp") == "webp"


@pytest.mark.parametrize("fmt", ["webp", "png"])
def test_new_formats_carry_no_ffmpeg_version_string_and_are_in_the_fingerprint(frames, fmt):
    import re

    data = encode_clip(frames, 8, EncodeSettings(format=fmt))
    assert re.search(rb"Lav[fc]\d", data) is None
    if fmt == "webp":
        assert data[:4] == b"RIFF" and b"ANIM" in data[:64]  # animated, not one still
    mp4 = job_fingerprint(RenderSettings(model="null"), EncodeSettings())
    other = job_fingerprint(RenderSettings(model="null"), EncodeSettings(format=fmt))
    assert fingerprint_differences(mp4, other) == [
        f"encode.format: run dir has 'mp4', this command has {fmt!r}"
    ]


def test_png_run_stores_exactly_the_frames_it_hashed(ray_local, tmp_path):
    """Through a real render: --format png clips are zips whose PNGs decode to the very
    frames frames_sha256 hashed (lossless); webm/webp/gif runs go the same path."""
    from tests.conftest import prompt_rows, read_catalog, write_manifest
    from tests.support.runs import assert_exactly_once, run_in_process

    rows = prompt_rows(3, prefix="png", height=64, width=64)
    manifest = write_manifest(tmp_path / "prompts.parquet", rows)
    out = tmp_path / "run"
    # The null model: what is stored against what was hashed is under test, not diffusion.
    flags = ("--model", "null", "--flush-interval", "0.2", "--no-progress", "--format", "png")
    assert run_in_process(manifest, out, *flags) == 0
    catalog = read_catalog(out)
    for row in catalog.select(["uri", "frames_sha256"]).to_pylist():
        assert row["uri"].endswith(".png.zip")
        data = open(row["uri"].removeprefix("file://"), "rb").read()
        assert frames_sha256(decode_clip(data)) == row["frames_sha256"]
    assert_exactly_once(out, [r["id"] for r in rows])
