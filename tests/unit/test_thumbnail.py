"""Thumbnails: small animated webp posters, reproducible, written before the row, swept."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.actor.worker import BatchWorker, WorkerSpec
from pipeline.config import EncodeSettings, RenderSettings
from pipeline.outputs.encode import decode_clip
from pipeline.outputs.thumbnail import LONG_SIDE, MAX_FRAMES, make_thumbnail
from pipeline.plan.batches import Batch
from pipeline.rundir.layout import RunDir
from pipeline.rundir.storage import TMP_PREFIX
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


def test_one_ffmpeg_process_per_item_writes_the_clip_and_its_thumbnail(tmp_path, monkeypatch):
    """Issue 20: a process start costs more than a small clip's encode. The worker's one
    ffmpeg run gives the same bytes as the clip and the thumbnail encoded on their own."""
    from pipeline.outputs import encode

    real, log = encode.ffmpeg_exe(), tmp_path / "starts"
    counting = tmp_path / "ffmpeg"
    counting.write_text(f'#!/bin/sh\necho "$$" >> {log}\nexec {real} "$@"\n')
    counting.chmod(0o755)
    monkeypatch.setattr(encode, "ffmpeg_exe", lambda: str(counting))
    run = RunDir(str(tmp_path / "run"))
    spec = WorkerSpec("null", RenderSettings(model="null"), EncodeSettings(format="webm"), run)
    items = tuple(_item("p", s, model="null", num_frames=33) for s in (1, 2, 3))
    rows = BatchWorker(spec).process(Batch(items, 4))
    assert len(log.read_text().split()) == len(items)  # one process per item, not two

    monkeypatch.setattr(encode, "ffmpeg_exe", lambda: real)
    frames = BatchWorker(spec).renderer.render(Batch(items, 4))
    for row, clip in zip(rows, frames):
        assert decode_clip(open(run.thumb_path(row["key"]), "rb").read()).shape[0] == 17
        assert open(run.thumb_path(row["key"]), "rb").read() == make_thumbnail(clip, 8)
        alone = encode.encode_clip(clip, 8, EncodeSettings(format="webm"))
        assert open(row["uri"].removeprefix("file://"), "rb").read() == alone
