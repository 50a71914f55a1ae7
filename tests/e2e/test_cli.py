"""The command line as a user meets it: help, exit codes, dry runs, bad input."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from tests.conftest import prompt_rows, run_cli, write_manifest


def test_help_teaches_commands_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("validate", "plan", "render", "status", "verify", "demo", "exit codes"):
        assert word in out
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--batch-size",
        "--threads",
        "--actors",
        "--gpus-per-actor",
        "--cpus-per-actor",
        "--format",
        "--max-retries",
        "--retry-failed",
        "--model",
        "--flush-interval",
    ):
        assert flag in out
    assert "--inject-fault" not in out  # test-only


def test_validate_reports_bad_rows_with_exit_2(tmp_path, capsys):
    rows = [
        {"id": "fine", "prompt": "ok", "seed": "1"},
        {"id": "empty", "prompt": "  ", "seed": "2"},
        {"id": "neg", "prompt": "x", "seed": "-3"},
    ]
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,prompt,seed\n" + "".join(f"{r['id']},{r['prompt']},{r['seed']}\n" for r in rows)
    )
    assert main(["validate", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "row 1 (id 'empty')" in err and "prompt" in err
    assert "row 2 (id 'neg')" in err and "seed" in err


def test_render_of_a_bad_manifest_writes_nothing(tmp_path):
    manifest = write_manifest(
        tmp_path / "m.parquet", [{"prompt": "ok", "seed": 1, "num_frames": 10}]
    )
    result = run_cli("render", manifest, "--out", tmp_path / "run", "--no-progress")
    assert result.returncode == 2, result.stderr
    assert "4k+1" in result.stderr
    assert not (tmp_path / "run").exists()


def test_plan_is_a_dry_run_with_counts(tmp_path, capsys):
    manifest = write_manifest(
        tmp_path / "m.parquet", prompt_rows(5) + prompt_rows(2, "wide", width=96)
    )
    assert (
        main(["plan", str(manifest), "--out", str(tmp_path / "run"), "--seconds-per-item", "36"])
        == 0
    )
    out = capsys.readouterr().out
    assert "distinct items: 7" in out and "pending: 7" in out and "batches of 4: 3" in out
    assert "0.07 GPU-hours" in out
    assert not (tmp_path / "run").exists()


def test_bad_flags_are_exit_2(tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(1))
    result = run_cli("render", manifest, "--out", tmp_path / "run", "--model", "nope/unknown")
    assert result.returncode == 2 and "'nope/unknown': it is not in the local" in result.stderr
    result = run_cli("validate", tmp_path / "missing.parquet")
    assert result.returncode == 2 and "missing.parquet" in result.stderr


def test_status_of_a_non_run_dir_is_exit_2(tmp_path):
    assert main(["status", str(tmp_path)]) == 2


def test_status_json(tmp_path, ray_local, capsys):
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(3))
    out = str(tmp_path / "run")
    assert main(["render", str(manifest), "--out", out, "--model", "null", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"ok": 3, "failed": 0, "pending": 0}
    assert report["catalog"] is True


@pytest.mark.parametrize(
    "flag", [["--batch-size", "0"], ["--actors", "-1"], ["--threads", "x"], ["--max-retries", "-1"]]
)
def test_nonsense_flag_values_are_exit_2_before_any_work(tmp_path, capsys, flag):
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(1))
    with pytest.raises(SystemExit) as info:
        main(["render", str(manifest), "--out", str(tmp_path / "run"), *flag])
    assert info.value.code == 2
    assert flag[0] in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
