"""`promptreel verify`: re-check clip files against the catalog, re-render a sample."""

from __future__ import annotations

import hashlib
import json

import pyarrow.compute as pc

from pipeline.catalog import read_catalog
from pipeline.config import RenderSettings
from pipeline.encode import frames_sha256
from pipeline.errors import ConfigError
from pipeline.plan import ITEM_FIELDS, Batch, Item
from pipeline.render import Renderer
from pipeline.storage import RunDir, open_fs


def verify_run(run: RunDir, sample: int) -> tuple[list[str], int, int]:
    """(problems, clips checked, items re-rendered). Renders in this process, no Ray."""
    catalog = read_catalog(run)
    if catalog is None:
        raise ConfigError(f"{run.url} has no catalog.parquet yet: finish the run first")
    ok = catalog.filter(pc.equal(catalog["status"], "ok"))
    problems = []
    for row in ok.select(["id", "uri", "sha256"]).to_pylist():
        fs, path = open_fs(row["uri"], run.storage_options)
        try:
            digest = hashlib.sha256(fs.cat_file(path)).hexdigest()
        except FileNotFoundError:
            problems.append(f"id {row['id']!r}: clip missing at {row['uri']}")
            continue
        if digest != row["sha256"]:
            problems.append(f"id {row['id']!r}: sha256 {digest} != catalog {row['sha256']}")
    sampled = _rerender_sample(run, ok, sample, problems)
    return problems, ok.num_rows, sampled


def _rerender_sample(run: RunDir, ok, sample: int, problems: list[str]) -> int:
    if sample <= 0 or ok.num_rows == 0:
        return 0
    job = json.loads(run.read_bytes(run.job_json))
    settings = RenderSettings(**{**job["render"], "model": ok["model"][0].as_py()})
    # Evenly spaced rows, so the sample is deterministic and spans the catalog.
    step = max(1, ok.num_rows // sample)
    rows = ok.take(list(range(0, ok.num_rows, step))[:sample]).to_pylist()
    renderers: dict[str, Renderer] = {}
    for row in rows:
        model = row["model"]
        if model not in renderers:
            renderers[model] = Renderer(model, settings)
        item = Item(**{name: row[name] for name in ITEM_FIELDS})
        frames = renderers[model].render(Batch((item,), settings.batch_size))[0]
        got = frames_sha256(frames) if not isinstance(frames, Exception) else f"error {frames}"
        if got != row["frames_sha256"]:
            problems.append(f"id {row['id']!r}: re-rendered frames_sha256 {got} != catalog")
    return len(rows)
