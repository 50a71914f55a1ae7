"""Per-batch work inside a render actor: render, then encode, hash and write each clip.

Plain Python (no Ray), so the whole per-item path is testable in-process. Frames never
leave this process: only a small result row per item goes back to the driver.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from pipeline.actor.faults import Faults
from pipeline.actor.media import MediaFetcher
from pipeline.actor.renderer import Rendered, Renderer
from pipeline.config import EncodeSettings, MediaLimits, RenderSettings
from pipeline.errors import EncodeError, RenderError
from pipeline.media.source import MediaError
from pipeline.outputs import encode_many, qc
from pipeline.outputs.audio import Audio
from pipeline.outputs.encode import clip_extension, frames_sha256
from pipeline.outputs.encode_many import ClipJob
from pipeline.outputs.thumbnail import make_thumbnail, png_bytes
from pipeline.plan.batches import Batch, Item
from pipeline.rundir.layout import RunDir
from pipeline.schema import WORKER_RESULT_COLUMNS

# Outcomes a worker reports; the driver turns "retriable" into another attempt or "failed".
OK, FATAL, RETRIABLE = "ok", "fatal", "retriable"


@dataclass(frozen=True)
class WorkerSpec:
    model: str
    render: RenderSettings
    encode: EncodeSettings
    run: RunDir
    encode_workers: int = 2
    faults: Faults = field(default_factory=Faults)
    qc: str = "flag"  # "flag" | "fail" | "off" (pipeline/outputs/qc.py)
    media: MediaLimits = field(default_factory=MediaLimits)


def outcome(key: str, status: str, error: str = "", **measures) -> dict:
    """One result row as the worker reports it (the driver adds attempts and the batch);
    its columns are schema.WORKER_RESULT_COLUMNS, null where not measured."""
    row = dict.fromkeys(WORKER_RESULT_COLUMNS)
    row.update(key=key, status=status, error=error)
    row["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    unknown = set(measures) - set(row)
    if unknown:  # a column the schema does not own would be dropped by the ledger
        raise ValueError(f"result columns not in pipeline/schema.py: {sorted(unknown)}")
    row.update(measures)
    return row


class BatchWorker:
    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        media = MediaFetcher(spec.media, spec.run.storage_options)
        self.renderer = Renderer(spec.model, spec.render, spec.faults, media)
        # Encoding runs in threads (each drives an ffmpeg process) so the next batch can
        # render meanwhile; the lock keeps one batch at a time on the model.
        self._encoders = ThreadPoolExecutor(max(1, spec.encode_workers), "encode")
        self._render_lock = threading.Lock()

    def close(self) -> None:
        """Before the actor loads another model: no encode is left running (a batch's
        results return only when its clips are written)."""
        self._encoders.shutdown(wait=True)

    def process(self, batch: Batch) -> list[dict]:
        with self._render_lock:
            self.spec.faults.stall(batch.items, self.spec.run)
            started = time.perf_counter()
            try:
                outputs = self.renderer.render_clips(batch)
            except RenderError as exc:
                status = RETRIABLE if exc.retriable else FATAL
                return [outcome(item.key, status, str(exc)) for item in batch.kept]
            # Mates that are not wanted were rendered as padding (their planned batch's
            # pixels): their outputs are dropped, and their time is the kept items' cost.
            render_s = (time.perf_counter() - started) / len(batch.kept)
        kept = set(batch.keys)
        return self.finish(
            [(item, clip) for item, clip in zip(batch.items, outputs) if item.key in kept],
            render_s,
        )

    def finish(self, rendered: list[tuple[Item, Rendered | RenderError]], render_s: float):
        """QC, encode, hash and write each rendered item: its result row, in order."""
        done: dict[str, dict] = {}
        clips: list[_Clip] = []
        for item, output in rendered:
            checked = self.check_clip(item, output, render_s)
            if isinstance(checked, dict):
                done[item.key] = checked
            else:
                clips.append(checked)
        # A batch's small clips share one ffmpeg process (pipeline/outputs/encode_many.py);
        # each group encodes in a thread, so the next batch renders meanwhile.
        futures = [
            self._encoders.submit(self.finish_group, [clips[i] for i in group])
            for group in encode_many.groups([clip.job for clip in clips])
        ]
        for future in futures:
            done.update((row["key"], row) for row in future.result())
        return [done[item.key] for item, _ in rendered]

    def input_files(self, item: Item) -> dict[str, bytes]:
        """PNG of each media input as the pipeline got it (decoded and fitted; cached); of a
        video, its first frame (the poster: the catalog names the video and its hash)."""
        return {name: png_bytes(image) for name, image in self.renderer.media_posters(item).items()}

    def check_clip(self, item: Item, clip: Rendered | RenderError, render_s: float):
        """QC on the rendered frames, before any encoding: the clip to encode (a _Clip),
        or the item's final row when it ends here (a render error, --qc fail)."""
        if isinstance(clip, RenderError):
            return outcome(item.key, RETRIABLE if clip.retriable else FATAL, str(clip))
        spec = self.spec
        frames, sound = clip.frames, clip.audio if spec.encode.audio else None
        if spec.faults.hits("black", item.prompt):
            frames = np.zeros_like(frames)
        checks = qc.check(frames, spec.qc, sound)
        reason = qc.failure_reason(checks) if spec.qc == "fail" else ""
        if reason:  # nothing written: the sweep would remove it anyway
            return outcome(item.key, FATAL, reason, render_s=render_s, **checks)
        extra = (
            {"vcodec": "promptreel-injected-fault"}
            if spec.faults.hits("encode", item.prompt)
            else None
        )
        track = sound.fitted(len(frames) / item.fps) if sound is not None else None
        job = ClipJob(frames, item.fps, track, extra)
        return _Clip(item, job, sound, checks, render_s)

    def finish_group(self, clips: list[_Clip]) -> list[dict]:
        """Encode the clips (one of `encode_many.groups`: one ffmpeg), then write each;
        the rows."""
        started = time.perf_counter()
        encoded = encode_many.encode_group([clip.job for clip in clips], self.spec.encode)
        shared_s = (time.perf_counter() - started) / len(clips)
        return [self.finish_item(clip, data, shared_s) for clip, data in zip(clips, encoded)]

    def finish_item(self, clip: _Clip, data: bytes | EncodeError, encode_s: float) -> dict:
        """Thumbnail, hash and write one encoded clip; it is on storage before we report
        ok. `encode_s`: its share of its group's encode."""
        spec, item, render_s = self.spec, clip.item, clip.render_s
        started = time.perf_counter()
        frames = clip.job.frames
        try:
            if isinstance(data, EncodeError):
                raise data
            thumbnail = make_thumbnail(frames, item.fps)
            inputs = self.input_files(item)
        except EncodeError as exc:
            return outcome(item.key, FATAL, f"EncodeError: {exc}", render_s=render_s)
        except MediaError as exc:  # evicted from the cache, then unreadable: as at render
            status = RETRIABLE if exc.retriable else FATAL
            return outcome(item.key, status, f"{item.media_names()}: {exc}", render_s=render_s)
        path = spec.run.clip_path(item.key, clip_extension(spec.encode.format))
        try:
            if spec.faults.hits("storage", item.prompt):
                raise OSError("injected storage fault")
            # All before the result row exists: a kill in between only re-renders.
            for name, image in inputs.items():
                spec.run.write(spec.run.input_path(item.key, name), image)
            spec.run.write(spec.run.thumb_path(item.key), thumbnail)
            spec.run.write(path, data)
        except OSError as exc:
            return outcome(item.key, RETRIABLE, f"storage error: {exc}", render_s=render_s)
        sound, track = clip.sound, clip.job.audio
        return outcome(
            item.key,
            OK,
            uri=spec.run.uri(path),
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            frames_sha256=frames_sha256(frames),
            **(sound.columns(track) if sound is not None else {}),
            render_s=render_s,
            encode_s=encode_s + time.perf_counter() - started,
            **clip.checks,
        )


@dataclass(frozen=True)
class _Clip:
    """A rendered item that passed QC, on its way to an encoder."""

    item: Item
    job: ClipJob
    sound: Audio | None  # as rendered (the job's track is fitted to the video's length)
    checks: dict
    render_s: float
