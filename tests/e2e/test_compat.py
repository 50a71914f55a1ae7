"""A run dir rendered by an earlier promptreel resumes with nothing rendered twice.

tests/data/rundir-4746ad8/ was rendered by commit 4746ad8 (before the package layout of
issue 15) from tests/data/rundir-4746ad8.jsonl:

    promptreel render rundir-4746ad8.jsonl --out rundir-4746ad8 --batch-size 2 \
        --inject-fault "encode:a clip whose encode fails"

(4 ok items, one failed, one row sharing a clip, a passthrough column, a seed of 2**64-1).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.cli.parser import build_parser
from pipeline.cli.run_config import config_from_args
from pipeline.driver.job import run_job
from pipeline.driver.verify import verify_run
from pipeline.models.families import PARAM_NAMES
from pipeline.rundir.jobjson import library_versions
from pipeline.rundir.layout import RunDir
from pipeline.schema import (
    AUDIO_FIELDS,
    LORA,
    MEDIA_COLUMNS,
    MEDIA_HASH_COLUMNS,
    REFERENCE_IMAGES,
    RESIZE,
)
from tests.conftest import REPO

DATA = REPO / "tests" / "data"
FLAGS = ("--batch-size", "2", "--no-progress")


def files(run: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.parts[-2:-1] != ("ledger",)
    }


def old_run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(DATA / "rundir-4746ad8", run)
    # The fixture recorded the library versions of the machine that made it; this test is
    # about promptreel's own code, so it gives the run dir this machine's versions.
    job = json.loads((run / "job.json").read_text())
    (run / "job.json").write_text(json.dumps({**job, "versions": library_versions()}))
    return run


def render(manifest: Path, run: Path):
    args = build_parser().parse_args(["render", str(manifest), "--out", str(run), *FLAGS])
    return run_job(config_from_args(args))


def test_an_old_finished_run_dir_resumes_with_nothing_rendered_and_no_ray(tmp_path):
    run = old_run_dir(tmp_path)
    before = files(run)
    old_catalog = pq.read_table(run / "catalog.parquet")
    ledger_parts = sorted(p.name for p in (run / "_state" / "ledger").iterdir())

    result = render(DATA / "rundir-4746ad8.jsonl", run)

    assert result.rendered == 0 and result.exit_code == 3  # the failed row stays failed
    assert not result.started_ray  # nothing pending: Ray never started
    assert json.loads((run / "summary.json").read_text())["startup"] is None
    after = files(run)
    for name in [n for n in before if n.startswith(("clips/", "thumbs/"))]:
        assert after[name] == before[name], name  # every clip and thumbnail untouched
    assert sorted(p.name for p in (run / "_state" / "ledger").iterdir()) == ledger_parts
    catalog = pq.read_table(run / "catalog.parquet")
    # Every old column, in the same order; the columns added since: each row is its own
    # variant 0 (best of N: issue 17), media columns and the family parameters of media
    # rows (`conditioning_scale`, `frame_index`, `strength`: issue 16), VACE's
    # `reference_images` and `lora` (issue 18) are null for rows without them.
    old = old_catalog.column_names
    assert [name for name in catalog.column_names if name in old] == old
    added = [name for name in catalog.column_names if name not in old]
    media = [*MEDIA_COLUMNS, RESIZE, LORA, REFERENCE_IMAGES, *MEDIA_HASH_COLUMNS]
    # ... and every family parameter since (the 2026 families: issue 19), and the sound
    # columns (null: these clips have none).
    params = [name for name in PARAM_NAMES if name not in old]
    assert {"conditioning_scale", "frame_index", "strength", "stg_scale"} <= set(params)
    sound = [*dict(AUDIO_FIELDS), "qc_audio_rms_dbfs", "qc_audio_clipped"]
    assert added == ["source_id", "variant", *params, *media, *sound]
    assert catalog["source_id"].to_pylist() == catalog["id"].to_pylist()
    assert catalog["variant"].to_pylist() == [0] * catalog.num_rows
    assert all(catalog[name].null_count == catalog.num_rows for name in added[2:])
    for name in ("id", "key", "seed", "status", "sha256", "frames_sha256", "caption_src"):
        assert catalog[name].to_pylist() == old_catalog[name].to_pylist(), name


def test_an_old_run_dir_takes_new_rows_and_renders_only_them(tmp_path, ray_local):
    run = old_run_dir(tmp_path)
    before = files(run)
    manifest = tmp_path / "more.jsonl"
    new_row = {"id": "new", "prompt": "a new row", "seed": 5, "caption_src": "web"}
    manifest.write_text((DATA / "rundir-4746ad8.jsonl").read_text() + json.dumps(new_row) + "\n")

    result = render(manifest, run)

    assert result.rendered == 1 and result.counts == {"ok": 5, "failed": 1, "pending": 0}
    after = files(run)
    for name in [n for n in before if n.startswith(("clips/", "thumbs/"))]:
        assert after[name] == before[name], name
    assert len([n for n in after if n.startswith("clips/")]) == 4
    # The old clips re-render to their recorded frames under today's code (same keys,
    # same planned batches, same pixels).
    problems, checked, sampled = verify_run(RunDir(str(run)), sample=4)
    assert problems == [] and checked == 5 and sampled == 4
