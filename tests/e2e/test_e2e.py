"""End to end on a real local Ray with the tiny model: clips, catalog, checksums."""

from __future__ import annotations

import hashlib
import json

import fsspec
import pyarrow.compute as pc
import pytest

from pipeline import schema
from pipeline.cli import main
from pipeline.outputs.encode import decode_clip
from tests.conftest import prompt_rows, read_catalog, write_manifest


@pytest.fixture(scope="module")
def two_shape_run(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("e2e")
    rows = prompt_rows(7, "square") + prompt_rows(5, "wide", width=96, num_frames=13)
    for row in rows:
        row["source"] = f"src/{row['id']}"  # passthrough column
    manifest = write_manifest(tmp / "m.parquet", rows)
    code = main(
        [
            "render",
            str(manifest),
            "--out",
            str(tmp / "run"),
            "--actors",
            "2",
            "--batch-size",
            "4",
            "--no-progress",
        ]
    )
    return tmp / "run", rows, code


def test_every_clip_decodes_with_the_right_shape(two_shape_run):
    run, rows, code = two_shape_run
    assert code == 0
    catalog = read_catalog(run)
    assert catalog.num_rows == len(rows) == 12
    assert catalog["status"].to_pylist() == ["ok"] * 12
    for row in catalog.to_pylist():
        with fsspec.open(row["uri"], "rb") as handle:
            data = handle.read()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert len(data) == row["bytes"]
        frames = decode_clip(data)
        assert frames.shape == (row["num_frames"], row["height"], row["width"], 3)


def test_catalog_keeps_manifest_order_ids_and_passthrough(two_shape_run):
    run, rows, _ = two_shape_run
    catalog = read_catalog(run)
    assert catalog["id"].to_pylist() == [r["id"] for r in rows]
    assert catalog["source"].to_pylist() == [r["source"] for r in rows]
    assert set(pc.unique(catalog["width"]).to_pylist()) == {64, 96}
    for column in ("key", "sha256", "frames_sha256", "render_s", "encode_s", "finished_at"):
        assert catalog[column].null_count == 0, column
    assert catalog["attempts"].to_pylist() == [1] * 12


def test_clips_are_sharded_by_key_and_nothing_else_is_there(two_shape_run):
    run, _, _ = two_shape_run
    catalog = read_catalog(run)
    expected = {f"{k[:2]}/{k}.mp4" for k in catalog["key"].to_pylist()}
    found = {str(p.relative_to(run / "clips")) for p in (run / "clips").rglob("*") if p.is_file()}
    assert found == expected


def test_summary_and_report(two_shape_run):
    run, _, _ = two_shape_run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"] == {"ok": 12, "failed": 0, "pending": 0}
    assert summary["items"] == 12 and summary["rendered_this_run"] == 12
    assert {"torch", "diffusers"} <= set(summary["versions"])
    assert "square number 3" in (run / "report.html").read_text()


def test_second_run_renders_nothing(two_shape_run, capsys):
    run, _, _ = two_shape_run
    manifest = run.parent / "m.parquet"
    before = read_catalog(run)
    assert main(["render", str(manifest), "--out", str(run), "--actors", "2", "--no-progress"]) == 0
    assert "(0 rendered this run)" in capsys.readouterr().out
    assert read_catalog(run).equals(before)


def test_forced_encode_failure_is_a_failed_row_with_ffmpegs_message(tmp_path, ray_local, capsys):
    rows = prompt_rows(6, "enc")
    manifest = write_manifest(tmp_path / "m.parquet", rows)
    code = main(
        [
            "render",
            str(manifest),
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
            "--model",
            "null",  # the encoder's failure is under test, not the diffusion
            "--inject-fault",
            "encode:enc number 2",
        ]
    )
    assert code == 3
    catalog = read_catalog(tmp_path / "run").to_pylist()
    failed = [r for r in catalog if r["status"] == "failed"]
    assert [r["id"] for r in failed] == ["enc-2"]
    assert "EncodeError" in failed[0]["error"]
    assert "Unknown encoder" in failed[0]["error"]  # ffmpeg's own words
    assert failed[0]["uri"] is None and failed[0]["attempts"] == 1
    assert all(r["status"] == "ok" for r in catalog if r["id"] != "enc-2")
    assert "some items failed" in capsys.readouterr().err


def test_ray_job_entrypoint_and_demo_command(tmp_path, ray_local, capsys):
    """`python -m jobs.render` runs the job as a subprocess (the entry point is under test:
    the null model) with RAY_ADDRESS set, as `ray job submit` runs it: it joins the
    session's Ray; `promptreel demo` renders the demo manifest (in-process, on the
    session's Ray: the demo's job is under test, not its process)."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(2, "job"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.render",
            str(manifest),
            "--out",
            str(tmp_path / "run"),
            "--model",
            "null",
            "--no-progress",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address},
    )
    assert result.returncode == 0, result.stderr
    assert read_catalog(tmp_path / "run")["status"].to_pylist() == ["ok", "ok"]

    capsys.readouterr()
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    said = capsys.readouterr().out
    assert "catalog.parquet" in said and "clips" in said
    demo = read_catalog(tmp_path / "demo")
    rat = demo.filter(pc.equal(demo["prompt"], "anime, cute rat running in a forest"))
    assert 3048053658270753 in rat["seed"].to_pylist()
    assert set(demo["status"].to_pylist()) == {"ok"}


def test_every_column_of_a_real_catalog_is_an_input_a_passthrough_or_refused(
    two_shape_run, tmp_path, capsys
):
    """Walk the catalog of a real run: a manifest giving any column promptreel wrote there is
    refused at validate (exit 2, naming it), so it can never replace promptreel's values."""
    run, rows, _ = two_shape_run
    written = [
        name
        for name in read_catalog(run).column_names
        if name not in schema.MANIFEST_COLUMNS and name != "source"  # source: passthrough
    ]
    assert "status" in written and "qc_flags" in written
    for name in written:
        assert schema.reserved_reason(name), name
        manifest = write_manifest(tmp_path / f"{name}.parquet", [{**rows[0], name: "mine"}])
        capsys.readouterr()
        assert main(["validate", str(manifest)]) == 2, name
        assert f"column {name!r} is reserved" in capsys.readouterr().err
