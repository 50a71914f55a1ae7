"""Render until good (`--until motion>=T --max-variants 3`), against what every variant's
score says: each row renders its variants in order up to the first that passes, rows that
never pass end after 3 and say so; a kill mid-run, then the same command, gives the same
rendered set and pixels. The null model renders, `motion` (no checkpoint) scores."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.rundir.layout import RunDir
from pipeline.rundir.status import run_status
from tests.conftest import prompt_rows, read_catalog, write_manifest
from tests.support.runs import kill_session, poll, start_render

FLAGS = ("--model", "null", "--batch-size", "2", "--no-progress", "--flush-interval", "0.2")
M = 3


@pytest.fixture(scope="module")
def every_variant(ray_local, tmp_path_factory):
    """Every row's M variants, all scored: what --until must decide from."""
    tmp = tmp_path_factory.mktemp("until")
    manifest = write_manifest(
        tmp / "m.parquet", prompt_rows(8, "until", height=16, width=16, num_frames=5)
    )
    out = tmp / "all"
    args = ["render", str(manifest), "--out", str(out), *FLAGS, "--variants", str(M)]
    assert main([*args, "--score", "motion"]) == 0
    catalog = read_catalog(out)
    scores = catalog["score_motion"].to_numpy()
    threshold = float(np.median(scores))  # some rows pass at once, some later, some never
    return manifest, catalog, threshold


def expected(catalog, threshold):
    """Per row: the variants --until renders, and whether the row passes."""
    plan = {}
    for row in catalog.to_pylist():
        variants, passed = plan.setdefault(row["source_id"], ([], None))
        if passed:
            continue
        variants.append(row["id"])
        ok = row["score_motion"] >= threshold
        plan[row["source_id"]] = (variants, True if ok else (False if len(variants) == M else None))
    return plan


def until_args(manifest, out, threshold):
    return [
        "render",
        str(manifest),
        "--out",
        str(out),
        *FLAGS,
        "--score",
        "motion",
        "--until",
        f"motion>={threshold!r}",
        "--max-variants",
        str(M),
    ]


def test_rows_render_until_a_variant_passes(every_variant, tmp_path):
    manifest, everything, threshold = every_variant
    plan = expected(everything, threshold)
    outcomes = {passed for _, passed in plan.values()}
    assert outcomes == {True, False}, plan  # the median splits the rows
    assert {len(v) for v, _ in plan.values()} >= {1, M}
    out = tmp_path / "run"
    assert main(until_args(manifest, out, threshold)) == 0
    catalog = read_catalog(out)
    by_source = {}
    for row in catalog.to_pylist():
        by_source.setdefault(row["source_id"], []).append(row)
    assert {s: [r["id"] for r in rows] for s, rows in by_source.items()} == {
        s: v for s, (v, _) in plan.items()
    }
    for source, rows in by_source.items():
        assert {r["score_passed"] for r in rows} == {plan[source][1]}
        assert [r["selected"] for r in rows] == [
            plan[source][1] is True and r is rows[-1] for r in rows
        ]
    same = everything.select(["id", "key", "sha256", "score_motion"]).to_pylist()
    reference = {r["id"]: r for r in same}
    for row in catalog.to_pylist():  # the same requests, pixels and scores
        assert reference[row["id"]]["sha256"] == row["sha256"]
        assert reference[row["id"]]["score_motion"] == row["score_motion"]

    # status counts the variants the run meant to render, not every row's M
    counts = run_status(RunDir(str(out)))["counts"]
    assert counts == {"ok": catalog.num_rows, "failed": 0, "pending": 0}

    # `promptreel score` on the finished run keeps its outcome: nothing to score, nothing
    # rewritten; with a new selection, `selected` follows it and `score_passed` stays.
    written = (out / "catalog.parquet").read_bytes()
    assert main(["score", str(out), "--score", "motion"]) == 0
    assert (out / "catalog.parquet").read_bytes() == written
    assert main(["score", str(out), "--score", "motion", "--keep", "1", "--by", "motion"]) == 0
    rescored = read_catalog(out)
    assert rescored["score_passed"].to_pylist() == catalog["score_passed"].to_pylist()
    best = {}
    for row in rescored.to_pylist():
        top = best.get(row["source_id"])
        if top is None or row["score_motion"] > top["score_motion"]:
            best[row["source_id"]] = row
    assert [r["selected"] for r in rescored.to_pylist()] == [
        best[r["source_id"]]["id"] == r["id"] for r in rescored.to_pylist()
    ]


def test_a_kill_mid_run_then_the_same_command_renders_the_same_set(
    every_variant, tmp_path, ray_local
):
    manifest, everything, threshold = every_variant
    out, log = tmp_path / "run", tmp_path / "killed.log"
    args = until_args(manifest, out, threshold)[4:]  # the flags
    joined = ("--address", ray_local.get_runtime_context().gcs_address)
    proc = start_render(manifest, out, *args, *joined, "--inject-fault=pause:score", log=log)
    poll(lambda: b"paused before score" in log.read_bytes(), proc, log)
    kill_session(proc)
    assert main(until_args(manifest, out, threshold)) == 0
    resumed = read_catalog(out)
    clean = tmp_path / "clean"
    assert main(until_args(manifest, clean, threshold)) == 0
    columns = ["id", "key", "sha256", "score_motion", "score_passed", "selected"]
    assert resumed.select(columns).equals(read_catalog(clean).select(columns))


def test_retry_failed_renders_the_failed_variants_again_once_each(every_variant, tmp_path):
    """A row whose every variant failed (a storage fault on its prompt) ends as never
    passing; --retry-failed with the fault still there tries each variant once more and
    ends (no endless retry); without the fault, the row ends as the clean run decides."""
    manifest, everything, threshold = every_variant
    plan = expected(everything, threshold)
    out = tmp_path / "run"
    fault = ("--max-retries", "0", "--inject-fault", "storage:until number 0")
    assert main([*until_args(manifest, out, threshold), *fault]) == 3
    failed = [r for r in read_catalog(out).to_pylist() if r["status"] == "failed"]
    assert [(r["source_id"], r["variant"]) for r in failed] == [("until-0", v) for v in range(M)]
    assert {r["score_passed"] for r in failed} == {False}

    assert main([*until_args(manifest, out, threshold), *fault, "--retry-failed"]) == 3
    again = [r for r in read_catalog(out).to_pylist() if r["status"] == "failed"]
    assert [r["key"] for r in again] == [r["key"] for r in failed]

    assert main([*until_args(manifest, out, threshold), "--retry-failed"]) == 0
    rows = [r for r in read_catalog(out).to_pylist() if r["source_id"] == "until-0"]
    assert [r["id"] for r in rows] == plan["until-0"][0]
    assert {r["score_passed"] for r in rows} == {plan["until-0"][1]}
    assert {r["status"] for r in rows} == {"ok"}
