"""Thumbnails: small animated webp posters, reproducible, written before the row, swept."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image, ImageSequence

from pipeline.actor.worker import BatchWorker, WorkerSpec
from pipeline.config import EncodeSettings, RenderSettings
from pipeline.outputs.encode import decode_clip
from pipeline.outputs.thumbnail import LONG_SIDE, MAX_FRAMES, make_thumbnail
from pipeline.plan.batches import Batch
from pipeline.rundir.layout import RunDir
from pipeline.rundir.storage import TMP_PREFIX
from tests.support.ffmpeg_starts import count_ffmpeg_starts
from tests.support.items import make_item as _item


def _noise(shape):
    return np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)


def test_long_side_and_frames_are_capped_never_upscaled_same_bytes():
    big = make_thumbnail(_noise((81, 480, 832, 3)), 16)
    assert decode_clip(big).shape == (21, 92, LONG_SIDE, 3)  # every 4th frame: 81 -> 21
    assert big == make_thumbnail(_noise((81, 480, 832, 3)), 16)
    small = decode_clip(make_thumbnail(_noise((9, 64, 48, 3)), 8))
    assert small.shape == (9, 64, 48, 3)
    assert MAX_FRAMES < 30
    tall = decode_clip(make_thumbnail(_noise((30, 320, 160, 3)), 8))
    assert tall.shape == (15, LONG_SIDE, 80, 3)  # 30 > MAX_FRAMES: every 2nd frame


def test_worker_writes_thumbnail_and_clip_before_it_returns_the_row(tmp_path):
    """What the driver gets back already has its files on storage, so a kill after the
    row is never a missing thumbnail; a kill before it re-renders the same bytes."""
    run = RunDir(str(tmp_path / "run"))
    writes = []

    class RecordingRunDir(RunDir):
        def write(self, path, data):
            writes.append(path)
            super().write(path, data)

    spec = WorkerSpec(
        "null", RenderSettings(model="null"), EncodeSettings(), RecordingRunDir(run.url)
    )
    rows = BatchWorker(spec).process(Batch(tuple(_item("p", s, model="null") for s in (1, 2)), 4))
    for row in rows:
        assert row["status"] == "ok"
        thumb = run.thumb_path(row["key"])
        assert writes.index(thumb) < writes.index(row["uri"].removeprefix("file://"))
        assert decode_clip(open(thumb, "rb").read()).shape == (9, 64, 64, 3)


def test_sweep_removes_thumbnails_without_an_ok_row_and_temp_files(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    keep, orphan = "ab" + "0" * 30, "cd" + "1" * 30
    for key in (keep, orphan):
        run.write(run.thumb_path(key), b"webp")
    stray_tmp = run.path("thumbs", "ab", f"{TMP_PREFIX}123")
    run.write(stray_tmp, b"partial")
    assert run.sweep(pa.array([keep])) == 2
    assert run.fs.exists(run.thumb_path(keep))
    assert not run.fs.exists(run.thumb_path(orphan)) and not run.fs.exists(stray_tmp)


def test_a_batch_of_small_clips_starts_one_ffmpeg_and_makes_thumbnails_in_process(
    tmp_path, monkeypatch
):
    """Issue 20: a process start costs more than a small clip's encode, so a batch's small
    clips share one ffmpeg and the thumbnails start no process; the files are what each
    encoder gives for each clip on its own."""
    from pipeline.outputs import encode

    real = encode.ffmpeg_exe()
    starts = count_ffmpeg_starts(tmp_path, monkeypatch)
    run = RunDir(str(tmp_path / "run"))
    spec = WorkerSpec("null", RenderSettings(model="null"), EncodeSettings(format="webm"), run)
    items = tuple(_item("p", s, model="null", num_frames=33) for s in (1, 2, 3))
    rows = BatchWorker(spec).process(Batch(items, 4))
    assert len(starts()) == 1  # not one per item, nor one per thumbnail

    monkeypatch.setattr(encode, "ffmpeg_exe", lambda: real)
    frames = BatchWorker(spec).renderer.render(Batch(items, 4))
    for row, clip in zip(rows, frames):
        thumbnail = open(run.thumb_path(row["key"]), "rb").read()
        assert thumbnail == make_thumbnail(clip, 8)
        assert decode_clip(thumbnail).shape == (17, 64, 64, 3)  # 33 > 24: every 2nd frame
        alone = encode.encode_clip(clip, 8, EncodeSettings(format="webm"))
        assert open(row["uri"].removeprefix("file://"), "rb").read() == alone


def test_thumbnail_looks_like_its_frames_and_lasts_as_long_as_the_clip():
    """A smooth moving gradient: the decoded poster is every 2nd frame averaged over 3x3
    blocks (area scaling, 480x240 -> 160x80) within lossy-preview error, and its frame
    timing keeps the clip's duration."""
    y, x = np.mgrid[0:240, 0:480]
    frames = np.stack(
        [np.stack([(x // 2 + 5 * f) % 256, y, (x + y) // 4 % 256], -1) for f in range(48)]
    ).astype(np.uint8)
    data = make_thumbnail(frames, 24.0)
    decoded = decode_clip(data).astype(float)
    assert decoded.shape == (24, 80, 160, 3)
    blocks = frames[::2].astype(float).reshape(24, 80, 3, 160, 3, 3).mean(axis=(2, 4))
    assert np.abs(decoded - blocks).mean() < 8
    durations = []
    with Image.open(io.BytesIO(data)) as poster:
        for frame in ImageSequence.Iterator(poster):
            frame.load()  # Pillow sets a frame's duration when it is decoded
            durations.append(frame.info["duration"])
    assert abs(sum(durations) - 2000) <= 24  # 48 frames at 24 fps; each within 1 ms


def test_frames_that_are_not_a_clip_are_an_encode_error():
    from pipeline.errors import EncodeError

    for bad in (np.zeros((0, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3), np.float32)):
        with pytest.raises(EncodeError, match="expected uint8 frames"):
            make_thumbnail(bad, 8)
