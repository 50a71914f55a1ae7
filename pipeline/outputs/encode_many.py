"""Several silent clips of one size and frame rate encoded by one ffmpeg process.

A process start costs more than a small clip's encode (measured, issue 20: 64x64x9 H.264
~21 ms CPU in a process of its own, ~12 ms in one shared with three more), so an actor
hands a batch's small clips to one ffmpeg: their frames go to stdin one clip after the
other, and the filter graph splits them back, each clip's frames trimmed to a branch of
its own, which starts at time 0 and feeds an encoder of its own. Each clip's bytes are those of
`encode_clip` on its frames alone (tested for every format): an encoder sees only its
clip's frames, with the same timestamps.

Large clips gain nothing from sharing (their encode dwarfs the start) and would lose the
parallel encode workers, so a group stops at GROUP_PIXELS. A clip with sound, or with
extra arguments (an injected fault), is encoded alone. A failing group is encoded again
clip by clip, so an error names its clip and leaves its group-mates whole.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import ffmpeg
import numpy as np

from pipeline.config import EncodeSettings
from pipeline.errors import EncodeError
from pipeline.outputs import encode
from pipeline.outputs.audio import Audio

# Frames x height x width of one group at most: 64x64x9 clips share a process 100 at a
# time, 832x480x81 ones never (one such clip is seconds of encode: its process start is
# lost in it).
GROUP_PIXELS = 4_000_000


@dataclass(frozen=True)
class ClipJob:
    """One clip to encode: uint8 frames (F, H, W, 3) at `fps`, its sound if any, and
    encoder arguments beyond the settings' (the encode fault injects a bad codec)."""

    frames: np.ndarray
    fps: float
    audio: Audio | None = None
    extra_args: dict | None = None

    def alone(self, settings: EncodeSettings) -> bytes:
        return encode.encode_clip(self.frames, self.fps, settings, self.extra_args, self.audio)

    @property
    def shareable(self) -> bool:
        return self.audio is None and not self.extra_args

    @property
    def pixels(self) -> int:
        count, height, width = self.frames.shape[:3]
        return count * height * width


def encode_clips(jobs: Sequence[ClipJob], settings: EncodeSettings) -> list[bytes | EncodeError]:
    """Each job's clip bytes (as `encode_clip` gives them), or the EncodeError it raised,
    in the jobs' order, with as few ffmpeg processes as GROUP_PIXELS allows."""
    results: list[bytes | EncodeError | None] = [None] * len(jobs)
    for group in groups(jobs):
        for index, data in zip(group, encode_group([jobs[i] for i in group], settings)):
            results[index] = data
    return results


def encode_group(jobs: Sequence[ClipJob], settings: EncodeSettings) -> list[bytes | EncodeError]:
    """One group of `groups` through one ffmpeg: each clip's bytes, or its EncodeError. A
    group that fails is encoded again clip by clip, so an error names its clip."""
    if len(jobs) > 1:
        try:
            return _encode_group(list(jobs), settings)
        except EncodeError:
            pass
    return [_alone(job, settings) for job in jobs]


def _alone(job: ClipJob, settings: EncodeSettings) -> bytes | EncodeError:
    try:
        return job.alone(settings)
    except EncodeError as exc:
        return exc


def groups(jobs: Sequence[ClipJob]) -> list[list[int]]:
    """Indices of the jobs each ffmpeg process encodes: shareable clips of one size and
    frame rate together, in order, up to GROUP_PIXELS; every other clip alone."""
    found: list[list[int]] = []
    open_groups: dict[tuple, list[int]] = {}
    for index, job in enumerate(jobs):
        if not job.shareable or job.frames.ndim != 4:  # encode_clip reports bad frames
            found.append([index])
            continue
        key = (job.frames.shape[1:], job.fps)
        group = open_groups.get(key)
        if group is None or sum(jobs[i].pixels for i in group) + job.pixels > GROUP_PIXELS:
            group = open_groups[key] = []
            found.append(group)
        group.append(index)
    return found


def _encode_group(jobs: list[ClipJob], settings: EncodeSettings) -> list[bytes]:
    for job in jobs:
        encode.check_frames(job.frames)
    _, height, width, _ = jobs[0].frames.shape
    source = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=jobs[0].fps
    ).split()
    args = encode.output_args(settings)
    with tempfile.TemporaryDirectory(prefix="promptreel-enc-") as workdir:
        outputs, start = [], 0
        for number, job in enumerate(jobs):
            end = start + len(job.frames)
            clip = source[number].trim(start_frame=start, end_frame=end).setpts("PTS-STARTPTS")
            outputs.append(ffmpeg.output(clip, _target(workdir, number, settings), **args))
            start = end
        frames = b"".join(np.ascontiguousarray(job.frames).tobytes() for job in jobs)
        encode.run_graph(ffmpeg.merge_outputs(*outputs), frames, f"{len(jobs)} clips")
        return [
            encode.clip_of(encode.read_folder(os.path.join(workdir, str(number))), settings.format)
            for number in range(len(jobs))
        ]


def _target(workdir: str, number: int, settings: EncodeSettings) -> str:
    """A folder of its own for clip `number` (png writes one file per frame)."""
    folder = os.path.join(workdir, str(number))
    os.mkdir(folder)
    return os.path.join(folder, encode.file_target(settings.format))
