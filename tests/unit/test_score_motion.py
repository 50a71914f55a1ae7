"""The motion scorer: mean |luma difference| of consecutive frames, over every frame."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.score import SCORERS, ScoreError
from pipeline.score.motion import motion_score


def test_a_static_clip_scores_zero():
    frame = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    assert motion_score(np.stack([frame] * 5)) == 0.0
    assert motion_score(frame[None]) == 0.0  # one frame: no pair


def test_known_motion_gives_the_hand_computed_value():
    clip = np.zeros((4, 2, 2, 3), np.uint8)
    clip[1, 0, 0] = (255, 255, 255)  # luma 255 on 1 of 4 pixels: 63.75
    clip[2] = clip[1]
    clip[2, 1, 1] = (0, 0, 200)  # + 0.114 * 200 = 22.8 on 1 pixel: 5.7
    # frame 3 black again: (255 + 22.8) / 4 = 69.45 (a uint8 difference would wrap)
    assert motion_score(clip) == pytest.approx((63.75 + 5.7 + 69.45) / 3, abs=1e-9)
    red = np.zeros((2, 1, 1, 3), np.uint8)
    red[1] = (100, 0, 0)
    green, blue = np.roll(red, 1, axis=-1), np.roll(red, 2, axis=-1)
    assert [motion_score(c) for c in (red, green, blue)] == pytest.approx([29.9, 58.7, 11.4])


def test_every_frame_counts_not_a_sample():
    # Black/white alternating: every consecutive pair differs by 255. Frames 16 samples
    # apart by an even step would differ by 0, so sampling would score lower.
    clip = np.zeros((40, 4, 4, 3), np.uint8)
    clip[1::2] = 255
    assert motion_score(clip) == pytest.approx(255.0)


def test_the_registered_scorer_scores_a_batch_and_takes_no_checkpoint():
    motion = SCORERS["motion"].load(None, "cpu")
    still = np.zeros((3, 4, 4, 3), np.uint8)
    moving = still.copy()
    moving[1:] = 10
    assert motion.score_batch([(still, "a"), (moving, "b")]) == pytest.approx([0.0, 5.0])
    assert motion.score_batch([]) == []
    with pytest.raises(ScoreError, match="no checkpoint"):
        SCORERS["motion"].load("/some/dir", "cpu")
    with pytest.raises(ScoreError, match="uint8"):
        motion.score_batch([(still.astype(np.float32), "a")])
