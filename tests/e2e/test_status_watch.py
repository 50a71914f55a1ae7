"""`promptreel status --watch`: refreshed from the run dir alone, with recent failures."""

from __future__ import annotations

from pipeline.cli import main
from tests.conftest import prompt_rows, write_manifest


def test_watch_shows_recent_failures_and_stops_once_the_run_is_complete(
    ray_local, tmp_path, capsys
):
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(6, prefix="w"))
    out = tmp_path / "run"
    flags = ("--model", "null", "--no-progress", "--max-retries", "0")
    code = main(
        ["render", str(manifest), "--out", str(out), *flags, "--inject-fault", "encode:w number 2"]
    )
    assert code == 3
    capsys.readouterr()
    assert main(["status", str(out), "--watch", "--interval", "0", "--refreshes", "4"]) == 3
    text = capsys.readouterr().out
    assert text.count("(refreshed ") == 1  # complete: the first refresh is the last
    assert "5 ok, 1 failed, 0 pending of 6 items" in text
    assert "failed " in text and "EncodeError" in text
