"""A clip's sound: the samples a family renders (LTX-2), their hash, and checks.

Samples are kept as the model gives them, float32 (channels, n) at the model's rate; the
catalog's audio_sha256 hashes exactly those (like frames_sha256 the uint8 frames), so a
re-render is compared sample for sample, whatever the container and codec. The clip
carries them as AAC (mp4) or Opus (webm): pipeline/outputs/encode.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from pipeline.errors import RenderError

SILENT_DBFS = -60.0  # RMS below this: a silent track
FLOOR_DBFS = -120.0  # the loudness of digital silence (no -inf in a catalog)
CLIPPED_LEVEL = 0.999  # |sample| at or above: at full scale
CLIPPED_SHARE = 0.001  # more than this share of samples at full scale: clipped


@dataclass(frozen=True, eq=False)
class Audio:
    samples: np.ndarray  # float32 (channels, n), nominally in [-1, 1]
    rate: int  # samples per second

    @classmethod
    def of(cls, samples, rate: int) -> Audio:
        """From what a family returns (a tensor or array, (n,) or (channels, n)); RenderError
        unless it is a finite, non-empty track at a positive rate."""
        if hasattr(samples, "detach"):
            samples = samples.detach().float().cpu().numpy()
        data = np.asarray(samples, dtype=np.float32)
        data = data.reshape(1, -1) if data.ndim == 1 else data
        if data.ndim != 2 or not data.shape[1] or int(rate) <= 0:
            raise RenderError(
                f"audio: expected (channels, samples) at a rate > 0, got {data.shape} at {rate}",
                retriable=False,
            )
        bad = data.size - int(np.isfinite(data).sum())
        if bad:
            raise RenderError(f"audio contains NaN or inf ({bad} samples)", retriable=False)
        return cls(np.ascontiguousarray(data), int(rate))

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.rate

    def fitted(self, seconds: float) -> Audio:
        """The track the clip carries: these samples cut, or padded with silence at the
        end, to `seconds` (the video's length). LTX-2's track runs ~30 ms (+-20) short of
        its video; fitted, the file's two streams end together."""
        wanted = max(1, round(seconds * self.rate))
        have = self.samples.shape[1]
        if have == wanted:
            return self
        if have > wanted:
            return Audio(np.ascontiguousarray(self.samples[:, :wanted]), self.rate)
        pad = np.zeros((self.channels, wanted - have), np.float32)
        return Audio(np.concatenate([self.samples, pad], axis=1), self.rate)

    def sha256(self) -> str:
        return hashlib.sha256(self.samples.astype("<f4", copy=False).tobytes()).hexdigest()

    def interleaved(self) -> bytes:
        """f32le, channels interleaved: what ffmpeg reads as `-f f32le -ac C -ar R`."""
        return np.ascontiguousarray(self.samples.T).astype("<f4", copy=False).tobytes()

    def columns(self, in_clip: Audio) -> dict:
        """The catalog's audio columns (schema.AUDIO_FIELDS): the hash of these samples, as
        rendered, and the length of the track the clip carries (`in_clip`: fitted)."""
        return {
            "audio_sha256": self.sha256(),
            "audio_sample_rate": self.rate,
            "audio_channels": self.channels,
            "audio_duration_s": in_clip.duration_s,
        }


def scores(audio: Audio) -> dict:
    """QC of the sound: loudness (RMS in dBFS) and the share of clipped samples."""
    rms = float(np.sqrt(np.mean(np.square(audio.samples, dtype=np.float64))))
    return {
        "qc_audio_rms_dbfs": max(20 * float(np.log10(rms)), FLOOR_DBFS) if rms else FLOOR_DBFS,
        "qc_audio_clipped": float(np.mean(np.abs(audio.samples) >= CLIPPED_LEVEL)),
    }


def flags(measured: dict) -> list[str]:
    found = []
    if measured["qc_audio_rms_dbfs"] < SILENT_DBFS:
        found.append("silent")
    if measured["qc_audio_clipped"] > CLIPPED_SHARE:
        found.append("clipped")
    return found
