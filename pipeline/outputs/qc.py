"""Cheap quality checks on a clip's uint8 frames, computed in the actor before encoding.

numpy only. Scores are in 8-bit luma levels (BT.601 weights, 0..255), measured on a
spatial subsample of at most QC_LONG_SIDE px (a strided view: the statistics below do
not need every pixel, and an 832x480x81 clip would otherwise cost ~400 MB of floats).

Non-finite model output is not a QC flag: it stays a fatal RenderError in render.py in
every --qc mode, because NaN -> uint8 is undefined (the pixels would not even be
reproducible). A constant output, which render.py used to reject, is a well-defined
clip and is QC's business now: it shows up as flat + frozen (+ black or white).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.outputs import audio
from pipeline.outputs.audio import Audio
from pipeline.schema import QC_FLAGS

QC_MODES = ("flag", "fail", "off")
QC_LONG_SIDE = 256


@dataclass(frozen=True)
class Thresholds:
    """Every QC threshold, in one place. How each was chosen (docs/design.md "QC" has the
    measured table): the tiny model's output (noise-like, luma std ~50-70, motion ~40-60,
    flicker < 2) and the null model's drifting noise must pass; synthetic black, white,
    flat, frozen and flickering clips must be flagged; each threshold sits far from both."""

    black_mean: float = 12.0  # a frame whose mean luma is <= this is black
    white_mean: float = 243.0  # ... >= this is white
    flat_std: float = 3.0  # a frame whose spatial luma std is < this is flat (one colour)
    frame_fraction: float = 0.5  # black / white / flat flags: at least this share of frames
    frozen_motion: float = 0.5  # mean |frame - previous frame| below this: frozen
    flicker: float = 10.0  # mean |2nd difference of frame mean luma| / 2 above this: flicker


THRESHOLDS = Thresholds()

# Its columns (null with --qc off and for rows that failed before QC ran): pipeline/schema.py.


def luma(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (F, h, w) float32 luma of a strided spatial subsample."""
    step = max(1, -(-max(frames.shape[1:3]) // QC_LONG_SIDE))
    view = frames[:, ::step, ::step, :].astype(np.float32)
    return view @ np.array([0.299, 0.587, 0.114], np.float32)


def scores(frames: np.ndarray) -> dict:
    """The QC score columns for one clip."""
    y = luma(frames)
    means = y.mean(axis=(1, 2), dtype=np.float64)
    stds = y.std(axis=(1, 2), dtype=np.float64)
    t = THRESHOLDS
    motion = float(np.abs(np.diff(y, axis=0)).mean(dtype=np.float64)) if len(y) > 1 else None
    flicker = float(np.abs(np.diff(means, 2)).mean()) / 2 if len(y) > 2 else None
    return {
        "qc_luma_mean": float(means.mean()),
        "qc_luma_std": float(y.std(dtype=np.float64)),
        "qc_black_frames": int((means <= t.black_mean).sum()),
        "qc_white_frames": int((means >= t.white_mean).sum()),
        "qc_flat_frames": int((stds < t.flat_std).sum()),
        "qc_motion": motion,
        "qc_flicker": flicker,
    }


def flags(measured: dict, num_frames: int) -> list[str]:
    """Names of the checks a clip fails, in a fixed order."""
    t = THRESHOLDS
    share = t.frame_fraction * num_frames
    found = [
        name
        for name, column in (("black", "qc_black_frames"), ("white", "qc_white_frames"))
        if measured[column] >= share
    ]
    if measured["qc_flat_frames"] >= share:
        found.append("flat")
    if measured["qc_motion"] is not None and measured["qc_motion"] < t.frozen_motion:
        found.append("frozen")
    if measured["qc_flicker"] is not None and measured["qc_flicker"] > t.flicker:
        found.append("flicker")
    return found


def check(frames: np.ndarray, mode: str, sound: Audio | None = None) -> dict:
    """Ledger fields for one clip: scores and qc_flags (empty dict with --qc off); with a
    sound, its loudness and clipping too (flags `silent`, `clipped`)."""
    if mode == "off":
        return {}
    measured = scores(frames)
    found = flags(measured, len(frames))
    if sound is not None:
        heard = audio.scores(sound)
        measured |= heard
        found += audio.flags(heard)
    return {**measured, QC_FLAGS: found}


def failure_reason(qc: dict) -> str:
    """The error of a row that --qc fail turns into `failed` ("" when it passes)."""
    found = qc.get(QC_FLAGS) or []
    if not found:
        return ""
    detail = {
        "black": f"{qc['qc_black_frames']} black frames",
        "white": f"{qc['qc_white_frames']} white frames",
        "flat": f"{qc['qc_flat_frames']} flat frames",
        "frozen": f"motion {qc['qc_motion']:.2f} < {THRESHOLDS.frozen_motion}",
        "flicker": f"flicker {qc['qc_flicker']:.2f} > {THRESHOLDS.flicker}",
        "silent": f"sound at {qc.get('qc_audio_rms_dbfs') or 0:.1f} dBFS < {audio.SILENT_DBFS}",
        "clipped": f"{qc.get('qc_audio_clipped') or 0:.2%} of samples at full scale",
    }
    return "QCFailed: " + ", ".join(f"{name} ({detail[name]})" for name in found)
