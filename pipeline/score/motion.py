"""How much a clip moves, from its pixels alone (no checkpoint):

    motion = mean over consecutive frame pairs (t-1, t) of mean |Y_t - Y_{t-1}|

with Y = 0.299 R + 0.587 G + 0.114 B (BT.601 luma, unrounded, in 0..255 units), over
EVERY frame and every pixel: unlike CLIP's 16 sampled frames, skipping frames would
measure the difference between frames further apart, a different quantity. A static
clip, and a clip of one frame (no pair), score 0.0. Every pair has the same pixel count,
so this is also the mean of all |dY|; it is outputs/qc.py's qc_motion without its
spatial subsample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.score.base import Clip, ScoreError, Scorer
from pipeline.score.frames import check_frames

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float64)  # BT.601


def motion_score(frames: np.ndarray) -> float:
    """Mean absolute luma difference of consecutive frames of a (F, H, W, 3) uint8 clip."""
    check_frames(frames)
    if len(frames) < 2:
        return 0.0
    # One frame of luma at a time: a whole 81x720x1280 clip in float64 would be 600 MB.
    total = 0.0
    previous = frames[0] @ LUMA_WEIGHTS
    for frame in frames[1:]:
        current = frame @ LUMA_WEIGHTS
        total += float(np.abs(current - previous).mean())
        previous = current
    return total / (len(frames) - 1)


class MotionScore:
    def score_batch(self, clips: Sequence[Clip]) -> list[float]:
        return [motion_score(frames) for frames, _prompt in clips]


def load_motion(location: str | None, device: str = "cpu") -> MotionScore:
    if location:
        raise ScoreError(f"motion takes no checkpoint, got {location!r}")
    return MotionScore()


MOTION = Scorer(
    name="motion",
    needs_checkpoint=False,
    description="mean |luma difference| of consecutive frames (0..255), all frames",
    load=load_motion,
)
