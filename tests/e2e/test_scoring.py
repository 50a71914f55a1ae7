"""Best of N end to end: variants rendered, scored in their own actor beside rendering,
the best kept; scores equal an independent computation on the stored clips; a resume and
`promptreel score` on a finished run score nothing twice and touch no clip.

The null model renders (its frames are a pure function of the request); the tiny CLIP
(tests/support/clip_checkpoint.py) scores."""

from __future__ import annotations

import json

import fsspec
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.outputs.encode import decode_clip
from tests.conftest import read_catalog, write_manifest
from tests.support.clip_checkpoint import reference_cosines, tiny_clip_dir

FLAGS = ("--model", "null", "--batch-size", "2", "--no-progress", "--flush-interval", "0.2")
SHAPE = {"height": 32, "width": 32, "num_frames": 5}
ROWS = [
    {"id": "fox", "prompt": "a red fox in the snow", "seed": 7, **SHAPE},
    {"id": "owl", "prompt": "猫 🐈 an owl at night", "seed": 2**40, **SHAPE},
]


def _files(run):
    return {p: p.stat().st_mtime_ns for p in sorted((run / "clips").rglob("*")) if p.is_file()}


def _parts(run):
    return sorted(p.name for p in (run / "_state" / "scores").rglob("part-*"))


@pytest.fixture(scope="module")
def scored(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scoring")
    manifest = write_manifest(tmp / "m.parquet", ROWS)
    out = tmp / "run"
    args = ["render", str(manifest), "--out", str(out), *FLAGS, "--variants", "3"]
    args += ["--score", f"clip={tiny_clip_dir()}", "--keep", "1", "--by", "clip"]
    assert main(args) == 0
    return args, out, read_catalog(out)


def test_scores_equal_an_independent_computation_on_the_stored_clips(scored):
    _, _, catalog = scored
    cosines = reference_cosines(tiny_clip_dir())
    for row in catalog.to_pylist():
        with fsspec.open(row["uri"], "rb") as handle:
            frames = decode_clip(handle.read())
        expected = np.mean([100 * max(c, 0.0) for c in cosines(frames, row["prompt"])])
        assert row["score_clip"] == pytest.approx(expected, abs=1e-3), row["id"]
    assert catalog["score_errors"].null_count == catalog.num_rows


def test_the_best_variant_of_each_row_is_selected(scored):
    args, out, catalog = scored
    rows = catalog.to_pylist()
    for source in ("fox", "owl"):
        variants = [r for r in rows if r["source_id"] == source]
        assert [r["variant"] for r in variants] == [0, 1, 2]
        best = max(variants, key=lambda r: (r["score_clip"], -r["variant"]))
        assert [r["selected"] for r in variants] == [r is best for r in variants]
    job = json.loads((out / "job.json").read_text())
    assert job["scorers"]["clip"]["scorer_id"].startswith("clip-v1:dir:")


def test_a_rerun_and_the_score_command_score_nothing_twice(scored, capsys):
    args, out, catalog = scored
    clips, parts = _files(out), _parts(out)
    assert main(args) == 0  # nothing to render, nothing to score
    assert _parts(out) == parts and _files(out) == clips
    assert read_catalog(out).equals(catalog)

    capsys.readouterr()
    assert main(["score", str(out), "--score", "motion", "--min-score", "motion=0"]) == 0
    assert "scored 6 clip(s); catalog and report rewritten" in capsys.readouterr().out
    after = read_catalog(out)
    assert _files(out) == clips  # no clip touched
    assert after["score_clip"].to_pylist() == catalog["score_clip"].to_pylist()
    assert all(value > 0 for value in after["score_motion"].to_pylist())  # the null model drifts
    assert after["selected"].to_pylist() == [True] * 6  # --min-score alone: every variant passes
    catalog_bytes = (out / "catalog.parquet").read_bytes()
    assert main(["score", str(out), "--score", "motion", "--min-score", "motion=0"]) == 0
    assert "scored 0 clip(s); nothing changed" in capsys.readouterr().out
    assert (out / "catalog.parquet").read_bytes() == catalog_bytes


def test_a_wrong_scorer_checkpoint_is_refused_before_anything_starts(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.parquet", ROWS)
    out = tmp_path / "run"
    not_clip = tmp_path / "not-clip"
    not_clip.mkdir()
    (not_clip / "config.json").write_text('{"model_type": "t5"}')
    args = ["render", str(manifest), "--out", str(out), *FLAGS, "--score", f"clip={not_clip}"]
    assert main(args) == 2
    assert "expected a CLIP checkpoint" in capsys.readouterr().err
    assert not (out / "clips").exists()
    assert main([*args[:-2], "--keep", "1", "--by", "clip"]) == 2  # no clip score to rank by
    assert "selection reads score(s) ['clip']" in capsys.readouterr().err
    assert not out.exists()  # both refused before the run dir was claimed


def test_export_takes_the_selected_variants_with_their_scores(scored, tmp_path, capsys):
    import tarfile

    _, out, _ = scored
    assert main(["score", str(out), "--keep", "1", "--by", "clip"]) == 0  # select again
    assert "scored 0 clip(s)" in capsys.readouterr().out
    catalog = read_catalog(out)
    assert catalog["selected"].to_pylist().count(True) == 2
    dest = tmp_path / "shards"
    assert main(["export", str(out), str(dest), "--to", "webdataset", "--selected-only"]) == 0
    assert "4 not selected" in capsys.readouterr().err
    samples = {}
    for shard in sorted(dest.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    samples[member.name] = json.loads(tar.extractfile(member).read())
    kept = {r["id"]: r["score_clip"] for r in catalog.to_pylist() if r["selected"]}
    assert {s["id"]: s["score_clip"] for s in samples.values()} == kept
    assert len(kept) == 2 and all(s["selected"] is True for s in samples.values())


def test_a_kill_during_scoring_then_the_same_command_scores_each_clip_once(tmp_path, ray_local):
    """The driver is killed once its first scores are saved (test-only `pause:score`);
    the same command then renders nothing again and scores only what is missing."""
    import pyarrow.parquet as pq

    from pipeline.rundir.layout import RunDir
    from pipeline.rundir.ledger import Ledger
    from tests.support.runs import kill_session, poll, start_render

    manifest = write_manifest(tmp_path / "m.parquet", ROWS)
    out, log = tmp_path / "run", tmp_path / "killed.log"
    flags = (*FLAGS, "--variants", "3", "--score", "motion", "--score-batch-size", "1")
    joined = ("--address", ray_local.get_runtime_context().gcs_address)  # no Ray start
    proc = start_render(manifest, out, *flags, *joined, "--inject-fault=pause:score", log=log)
    poll(lambda: b"paused before score" in log.read_bytes(), proc, log)
    kill_session(proc)
    # The clips the ledger holds (flushed before the pause): never rendered again. Not every
    # clip on disk: batches in flight while the driver paused may have written theirs, with
    # no row anywhere, and the resume rightly renders those again.
    recorded = set(Ledger(RunDir(str(out))).read(columns=("status",))["key"].to_pylist())
    clips = {path: mtime for path, mtime in _files(out).items() if path.stem in recorded}
    assert clips
    assert main(["render", str(manifest), "--out", str(out), *flags]) == 0
    catalog = read_catalog(out)
    assert catalog["status"].to_pylist() == ["ok"] * 6
    assert catalog["score_motion"].null_count == 0
    assert {p: t for p, t in _files(out).items() if p in clips} == clips  # none re-rendered
    parts = sorted((out / "_state" / "scores" / "motion").glob("part-*"))
    keys = [key for part in parts for key in pq.read_table(part)["key"].to_pylist()]
    assert sorted(keys) == sorted(set(catalog["key"].to_pylist()))  # each scored exactly once


def test_the_scoring_actor_yields_the_cores_to_rendering(ray_local, tmp_path):
    """It runs below the render actors' CPU priority (SCHED_IDLE on Linux), from before
    its imports: on shared cores scoring takes the cycles rendering leaves idle."""
    import os

    from pipeline.config import ScoreSettings
    from pipeline.driver.scoring import ScoreStage
    from pipeline.rundir.layout import RunDir
    from pipeline.score.resolve import resolve_scorer

    scorers = (resolve_scorer("motion", None),)
    stage = ScoreStage(ScoreSettings(), scorers, RunDir(str(tmp_path / "run")), "mp4", 1.0, {})
    stage.start()
    try:
        pid = ray_local.get(stage.actor.ready.remote())
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert os.sched_getscheduler(os.getpid()) != os.SCHED_IDLE  # as render actors run
    finally:
        stage.close()
