"""Several clips encoded by one ffmpeg process (pipeline/outputs/encode_many.py): each clip
has the bytes it has alone, groups follow size, frame rate and GROUP_PIXELS, and a failing
group falls back to one process per clip."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import EncodeSettings
from pipeline.errors import EncodeError
from pipeline.outputs import encode
from pipeline.outputs.audio import Audio
from pipeline.outputs.encode_many import GROUP_PIXELS, ClipJob, encode_clips, groups
from tests.support.ffmpeg_starts import count_ffmpeg_starts


def _noise(count, height=48, width=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), np.uint8)


def _silence(seconds: float) -> Audio:
    return Audio.of(np.zeros((1, round(seconds * 16000)), np.float32), 16000)


@pytest.mark.parametrize("fmt", sorted(encode.FORMATS))
@pytest.mark.parametrize("fps", [8.0, 30000 / 1001])
def test_each_clip_of_a_shared_process_has_the_bytes_it_has_alone(fmt, fps):
    settings = EncodeSettings(format=fmt)
    clips = [_noise(count, seed=count) for count in (9, 5, 1, 17)]
    shared = encode_clips([ClipJob(frames, fps) for frames in clips], settings)
    assert groups([ClipJob(frames, fps) for frames in clips]) == [[0, 1, 2, 3]]
    for frames, data in zip(clips, shared):
        assert data == encode.encode_clip(frames, fps, settings)


def test_a_batch_of_four_clips_starts_one_process(tmp_path, monkeypatch):
    starts = count_ffmpeg_starts(tmp_path, monkeypatch)
    encode_clips([ClipJob(_noise(9, seed=s), 8.0) for s in range(4)], EncodeSettings())
    assert len(starts()) == 1


def test_groups_share_size_and_rate_and_stop_at_the_pixel_budget():
    small = ClipJob(_noise(2), 8.0)
    other_size = ClipJob(_noise(2, 64, 48), 8.0)
    other_rate = ClipJob(_noise(2), 24.0)
    loud = ClipJob(_noise(2), 8.0, audio=_silence(0.25))
    faulty = ClipJob(_noise(2), 8.0, extra_args={"vcodec": "nope"})
    jobs = [small, other_size, small, other_rate, loud, faulty, small, other_size]
    assert groups(jobs) == [[0, 2, 6], [1, 7], [3], [4], [5]]

    # Full-size clips (views, no memory): one 832x480x81 is past the budget on its own.
    big = ClipJob(np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (81, 480, 832, 3)), 16.0)
    assert big.pixels > GROUP_PIXELS and groups([big, big]) == [[0], [1]]
    fits = GROUP_PIXELS // small.pixels
    assert [len(group) for group in groups([small] * (fits + 1))] == [fits, 1]


def test_a_clip_that_fails_fails_alone_and_its_group_mates_are_written(tmp_path, monkeypatch):
    jobs = [ClipJob(_noise(3, seed=s), 8.0) for s in range(3)]
    alone = [job.alone(EncodeSettings()) for job in jobs]
    jobs.insert(1, ClipJob(_noise(3), 8.0, extra_args={"vcodec": "promptreel-no-such-codec"}))
    starts = count_ffmpeg_starts(tmp_path, monkeypatch)
    results = encode_clips(jobs, EncodeSettings())
    assert isinstance(results[1], EncodeError) and "ffmpeg failed" in str(results[1])
    assert [results[0], *results[2:]] == alone
    assert len(starts()) == 2  # the three good clips' group, then the faulty clip alone


def test_a_failing_group_is_encoded_again_clip_by_clip(tmp_path, monkeypatch):
    """Whatever makes the shared process fail (here: ffmpeg refuses any filter graph), each
    clip still gets what it gets alone: its bytes, or its own error."""
    clips = [_noise(4, seed=s) for s in range(3)]
    alone = [encode.encode_clip(frames, 8.0, EncodeSettings()) for frames in clips]
    starts = count_ffmpeg_starts(tmp_path, monkeypatch, refuse="split")
    results = encode_clips([ClipJob(frames, 8.0) for frames in clips], EncodeSettings())
    assert len(starts()) == 1 + 3 and "split" in starts()[0]
    assert results == alone
