"""Which frames of a clip a per-frame scorer looks at, and grouping scores back by clip.

Per-frame scorers (clip, aesthetic) see at most 16 frames, evenly spread over the clip
including the first and the last: an 81-frame clip costs as much as a 16-frame one, and
neighbouring frames are near duplicates anyway. Motion looks at every frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.score.base import Clip, ScoreError

MOST_FRAMES = 16


def sample_indices(num_frames: int, most: int = MOST_FRAMES) -> list[int]:
    """Every index when num_frames <= most, else round(linspace(0, F-1, most)).

    Rounding is np.round: half to even (2.5 -> 2, 3.5 -> 4), not Python-2 half up. At
    most=16 no exact tie exists: linspace's k-th value is k(F-1)/15, and k(F-1)/15 =
    n + 1/2 would need 2k(F-1) (even) = 15(2n+1) (odd); other `most` values can tie.
    With F > most the step exceeds 1, so the indices are distinct and increasing.
    """
    if num_frames < 1 or most < 1:
        raise ScoreError(f"cannot sample {most} of {num_frames} frames")
    if num_frames <= most:
        return list(range(num_frames))
    return [int(i) for i in np.round(np.linspace(0, num_frames - 1, most))]


def check_frames(frames: np.ndarray) -> np.ndarray:
    """A clip's frames as scorers take them: uint8 (F, H, W, 3), F >= 1."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        kind = getattr(frames, "dtype", type(frames).__name__)
        raise ScoreError(f"clip frames must be a uint8 numpy array, got {kind}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ScoreError(f"clip frames must be (F>=1, H, W, 3), got shape {frames.shape}")
    return frames


def sampled(frames: np.ndarray, most: int = MOST_FRAMES) -> np.ndarray:
    """The sampled frames of a (F, H, W, 3) uint8 clip, in order."""
    return check_frames(frames)[sample_indices(len(frames), most)]


def sampled_frames(clips: Sequence[Clip], most: int = MOST_FRAMES):
    """Every clip's sampled frames in one flat list (one forward can span clips), with
    each frame's clip index: -> (list of (H, W, 3) uint8, int array)."""
    frames: list[np.ndarray] = []
    owners: list[int] = []
    for index, (clip, _prompt) in enumerate(clips):
        picked = sampled(clip, most)
        frames.extend(picked)
        owners.extend([index] * len(picked))
    return frames, np.asarray(owners, dtype=np.int64)


def mean_per_clip(values: np.ndarray, owners: np.ndarray, num_clips: int) -> list[float]:
    """Per-frame values averaged by clip (every clip has at least one frame)."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.bincount(owners, weights=values, minlength=num_clips)
    counts = np.bincount(owners, minlength=num_clips)
    return [float(s / c) for s, c in zip(sums, counts)]
