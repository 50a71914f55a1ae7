"""`promptreel verify`: re-check clip files against the catalog, re-render a sample."""

from __future__ import annotations

import hashlib

import pyarrow.compute as pc

from pipeline.actor.renderer import Renderer
from pipeline.config import RenderSettings
from pipeline.errors import ConfigError, EncodeError
from pipeline.outputs.encode import decode_clip, frames_sha256
from pipeline.plan.batches import Batch, Item
from pipeline.rundir.catalog import read_catalog
from pipeline.rundir.jobjson import pinned_model, read_job
from pipeline.rundir.layout import CLIPS_DIR, RunDir, is_leftover
from pipeline.rundir.storage import open_fs
from pipeline.schema import ITEM_FIELDS


def verify_run(run: RunDir, sample: int) -> tuple[list[str], int, int]:
    """(problems, clips checked, items re-rendered). Renders in this process, no Ray."""
    catalog = read_catalog(run)
    if catalog is None:
        raise ConfigError(f"{run.url} has no catalog.parquet yet: finish the run first")
    ok = catalog.filter(pc.equal(catalog["status"], "ok"))
    problems = []
    clips: dict[str, bytes] = {}
    for row in ok.select(["id", "uri", "sha256"]).to_pylist():
        fs, path = open_fs(row["uri"], run.storage_options)
        try:
            data = fs.cat_file(path)
        except FileNotFoundError:
            problems.append(f"id {row['id']!r}: clip missing at {row['uri']}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != row["sha256"]:
            problems.append(f"id {row['id']!r}: sha256 {digest} != catalog {row['sha256']}")
        clips[row["id"]] = data
    problems += _stray_files(run, set(ok["uri"].to_pylist()))
    sampled = _rerender_sample(run, ok, sample, problems, clips)
    return problems, ok.num_rows, sampled


def _stray_files(run: RunDir, referenced: set[str]) -> list[str]:
    """Files under clips/ that no ok catalog row refers to, and temp files of a crash."""
    problems = []
    for path in run.item_files((CLIPS_DIR,)):
        if is_leftover(path):
            problems.append(f"temp file left by a crash: {run.uri(path)}")
        elif run.uri(path) not in referenced:
            problems.append(f"clip not in the catalog: {run.uri(path)}")
    return problems


def _rerender_sample(run: RunDir, ok, sample: int, problems: list[str], clips: dict) -> int:
    if sample <= 0 or ok.num_rows == 0:
        return 0
    job = read_job(run)
    catalog = read_catalog(run)
    # Evenly spaced rows, so the sample is deterministic and spans the catalog.
    step = max(1, ok.num_rows // sample)
    rows = ok.take(list(range(0, ok.num_rows, step))[:sample]).to_pylist()
    renderers: dict[str, Renderer] = {}
    rendered = 0
    for row in rows:
        model = pinned_model(job, row["model"])  # the commit the run rendered, not today's
        if model not in renderers:
            renderers[model] = Renderer(model, RenderSettings(**{**job["render"], "model": model}))
        size = renderers[model].settings.batch_size
        batch, position = rendered_batch(catalog, row, size)
        if batch is None:  # its mates were re-planned by a later, different manifest
            continue
        rendered += 1
        clip = renderers[model].render_clips(batch)[position]
        got = frames_sha256(clip.frames) if not isinstance(clip, Exception) else f"error {clip}"
        if got != row["frames_sha256"]:
            problems.append(f"id {row['id']!r}: re-rendered frames_sha256 {got} != catalog")
        sound = getattr(clip, "audio", None)
        if row.get("audio_sha256") and (sound is None or sound.sha256() != row["audio_sha256"]):
            heard = sound.sha256() if sound is not None else "no sound"
            problems.append(f"id {row['id']!r}: re-rendered audio_sha256 {heard} != catalog")
        if row["id"] in clips:
            problems += _decode_problems(row, clips[row["id"]])
    return rendered


def rendered_batch(catalog, row: dict, size: int) -> tuple[Batch | None, int]:
    """The batch `row` was rendered in, rebuilt from the catalog, and its position there:
    alone if it was isolated, else its planned batch (every row with its batch_id, in
    batch_pos order). None when the mates cannot be found (their rows left the manifest)."""
    item = Item.from_record({name: row[name] for name in ITEM_FIELDS})
    if row.get("isolated") or row.get("batch_id") is None:  # alone, or an older catalog
        return Batch((item,), size), 0
    mates = catalog.filter(pc.equal(catalog["batch_id"], row["batch_id"]))
    by_position = {}
    for mate in mates.to_pylist():
        by_position.setdefault(
            mate["batch_pos"], Item.from_record({n: mate[n] for n in ITEM_FIELDS})
        )
    items = tuple(by_position[p] for p in sorted(by_position))
    batch = Batch(items, size)
    if batch.batch_id != row["batch_id"]:
        return None, 0
    return batch, row["batch_pos"]


def _decode_problems(row: dict, data: bytes) -> list[str]:
    """The clip decodes to the catalog's frame count and size."""
    try:
        decoded = decode_clip(data)
    except EncodeError as exc:
        return [f"id {row['id']!r}: clip does not decode: {exc}"]
    expected = (row["num_frames"], row["height"], row["width"], 3)
    if decoded.shape != expected:
        return [f"id {row['id']!r}: clip decodes to {decoded.shape}, expected {expected}"]
    return []
