"""A killed export resumes: complete units are kept as they are (same inode, same
mtime), the rest is written, and the result equals an export that was never killed;
the same from a run in a bucket to a bucket (moto S3 server)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.conftest import run_cli
from tests.support.s3 import BUCKET, aws_env, cli, fs_for, requests

pytest_plugins = ("tests.support.export_run",)  # the session's source run


@pytest.fixture
def run(export_source_run) -> Path:
    return export_source_run


def files_in(dest: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def identity(paths) -> dict[Path, tuple[int, int]]:
    return {p: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in paths}


def fresh_export(run: Path, kind: str, dest: Path, *flags: str) -> dict[str, bytes]:
    assert main(["export", str(run), "--to", kind, str(dest), "--no-progress", *flags]) == 0
    return files_in(dest)


def test_killed_webdataset_export_resumes(run, tmp_path):
    dest, flags = tmp_path / "wds", ("--shard-size", "3", "--workers", "2")
    args = ("export", run, "--to", "webdataset", dest, "--no-progress", *flags)
    killed = run_cli(*args, "--inject-stop-after", "3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    stats = sorted(dest.glob("*_stats.json"))
    assert 3 <= len(stats) < 8  # 23 samples in 8 shards of 3: killed part way
    assert not (dest / "export.json").exists()  # a partial export never looks complete
    complete = [
        s.with_name(s.name.replace("_stats.json", suffix))
        for s in stats
        for suffix in (".tar", ".parquet", "_stats.json")
    ]
    before = identity(complete)

    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{8 - len(stats)} written, {len(stats)} already complete" in resumed.stdout
    assert identity(complete) == before  # nothing complete was rewritten
    assert files_in(dest) == fresh_export(run, "webdataset", tmp_path / "fresh", *flags)

    finished = identity(dest.iterdir())
    again = run_cli(*args)
    assert again.returncode == 0 and "0 written, 8 already complete" in again.stdout
    assert identity(dest.iterdir()) == finished  # index included: nothing rewritten


def test_killed_files_export_resumes(run, tmp_path):
    dest = tmp_path / "files"
    args = ("export", run, "--to", "files", dest, "--no-progress", "--workers", "1")
    killed = run_cli(*args, "--inject-stop-after", "5")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    written = [p for p in dest.iterdir() if not p.name.startswith(".tmp-")]
    assert len(written) == 5 and not (dest / "index.csv").exists()
    before = identity(written)
    (dest / ".tmp-0123abcd").write_bytes(b"half a clip")  # as a kill mid-write leaves

    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "18 written, 5 already complete" in resumed.stdout
    assert identity(written) == before
    assert files_in(dest) == fresh_export(run, "files", tmp_path / "fresh")


def test_export_between_buckets(run, s3, tmp_path):  # noqa: F811 - s3 is the fixture
    fs = fs_for(s3)
    for path in run.rglob("*"):
        if path.is_file():
            fs.pipe_file(f"{BUCKET}/runs/exp/{path.relative_to(run)}", path.read_bytes())
    source, dest = f"s3://{BUCKET}/runs/exp", f"s3://{BUCKET}/exports/wds"
    args = ("export", source, "--to", "webdataset", dest, "--shard-size", "10", "--no-progress")
    done = cli(*args, aws=aws_env(s3))
    assert done.returncode == 0, done.stderr

    # The same bytes as an export of the local copy: a pure function of catalog and clips.
    local = fresh_export(run, "webdataset", tmp_path / "local", "--shard-size", "10")
    remote = {p.split("/exports/wds/", 1)[1]: fs.cat_file(p) for p in fs.find(f"{BUCKET}/exports")}
    assert remote == local

    import webdataset as wds

    (tmp_path / "00002.tar").write_bytes(remote["00002.tar"])
    samples = list(wds.WebDataset(str(tmp_path / "00002.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["000000020", "000000021", "000000022"]

    before = len(requests(s3))
    again = cli(*args, aws=aws_env(s3))
    assert again.returncode == 0 and "0 written, 3 already complete" in again.stdout
    assert [m for m, _ in requests(s3)[before:] if m in ("PUT", "POST", "DELETE")] == []
