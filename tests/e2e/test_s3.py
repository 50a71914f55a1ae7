"""Manifest and run dir in a real S3-compatible server (moto_server on 127.0.0.1).

The server enforces IAM authentication (moto's reset-auth), so bad credentials are
refused as on AWS. The CLI runs as a real subprocess that joins the session's Ray as a
submitted job (credentials reach its actors through the job's runtime_env, or as
--storage-options; the session's Ray holds no AWS_* of its own: conftest.py); its actors
write clips straight to the bucket. The server's request log counts round trips.
"""

from __future__ import annotations

import hashlib
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import ConfigError
from pipeline.rundir.layout import RunDir, check_run_dir_writable
from tests.support.s3 import BUCKET, aws_env, cli, fs_for, options, requests


def test_render_status_resume_in_bucket(s3, ray_local):
    fs = fs_for(s3)
    rows = [
        {"id": f"clip-{i}", "prompt": f"a lighthouse, take {i}", "seed": 7 + i, "shot": f"s{i}"}
        for i in range(3)
    ]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    manifest, out = f"s3://{BUCKET}/in/prompts.parquet", f"s3://{BUCKET}/runs/r1"
    fs.pipe_file(manifest, sink.getvalue())

    done = cli("validate", manifest, aws=aws_env(s3))
    assert done.returncode == 0, done.stderr
    assert "3 rows valid" in done.stdout

    # First run, credentials from the environment: one clip write fails (a storage blip
    # with no retries left), so the run ends with exit 3 and that item failed.
    before = len(requests(s3))
    done = cli(
        "render",
        manifest,
        "--out",
        out,
        "--model",
        "null",  # storage is under test here, not the diffusion
        "--no-progress",
        "--flush-interval",
        "1",
        "--max-retries",
        "0",
        "--inject-fault",
        f"storage:{rows[1]['prompt']}",
        aws=aws_env(s3),
        ray=ray_local,  # joined as a submitted job: its actors get the AWS_* through Ray
    )
    assert done.returncode == 3, done.stderr
    first_run = requests(s3)[before:]

    done = cli("status", out, "--json", aws=aws_env(s3))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"] == {"ok": 2, "failed": 1, "pending": 0}

    # Resume with --storage-options only (no AWS_* in the environment at all).
    before = len(requests(s3))
    done = cli(
        "render",
        manifest,
        "--out",
        out,
        "--model",
        "null",
        "--no-progress",
        "--retry-failed",
        "--storage-options",
        json.dumps(options(s3)),
        ray=ray_local,
    )
    assert done.returncode == 0, done.stderr
    assert "3 ok, 0 failed (1 rendered this run)" in done.stdout
    second_run = requests(s3)[before:]

    done = cli("status", out, "--storage-options", json.dumps(options(s3)))
    assert done.returncode == 0, done.stderr
    assert "3 ok, 0 failed, 0 pending of 3 items" in done.stdout

    catalog = pq.read_table(io.BytesIO(fs.cat_file(f"{out}/catalog.parquet"))).to_pylist()
    assert [(r["id"], r["status"], r["shot"]) for r in catalog] == [
        (f"clip-{i}", "ok", f"s{i}") for i in range(3)
    ]
    for row in catalog:
        assert row["uri"].startswith(f"s3://{BUCKET}/runs/r1/clips/{row['key'][:2]}/")
        data = fs.cat_file(row["uri"])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (row["bytes"], row["sha256"])
    assert fs.exists(f"{out}/summary.json") and fs.exists(f"{out}/report.html")
    assert not fs.exists(f"{out}/_state/driver.lock")  # released
    assert not [p for p in fs.find(out) if "/.probe-" in p or "/.tmp-" in p]

    # Each clip is exactly one PUT of the finished file (no multipart, no temp names),
    # no render-time request reads a clip back, and clips/ is listed once per run (the
    # crash sweep): the per-item cost is one PUT.
    clips = f"/{BUCKET}/runs/r1/clips/"
    for run in (first_run, second_run):
        assert [p for m, p in run if m == "GET" and "prefix=runs/r1/clips/" in p] != []
        assert len([p for m, p in run if "prefix=runs/r1/clips/" in p]) == 1
        assert not [p for _, p in run if "uploads" in p or "/.tmp-" in p]
    clip_requests = [(m, p) for m, p in first_run + second_run if p.startswith(clips)]
    keys = sorted(f"/{row['uri'].removeprefix('s3://')}" for row in catalog)
    assert sorted(p for m, p in clip_requests if m == "PUT") == keys
    assert [(m, p) for m, p in clip_requests if m != "PUT"] == []
    # Its thumbnail is one more PUT (thumbs/<k0k1>/<key>.webp), swept the same way.
    thumbs = f"/{BUCKET}/runs/r1/thumbs/"
    thumb_requests = [(m, p) for m, p in first_run + second_run if p.startswith(thumbs)]
    assert sorted(p for m, p in thumb_requests if m == "PUT") == sorted(
        f"{thumbs}{row['key'][:2]}/{row['key']}.webp" for row in catalog
    )
    assert [(m, p) for m, p in thumb_requests if m != "PUT"] == []
    for run in (first_run, second_run):
        assert len([p for m, p in run if "prefix=runs/r1/thumbs/" in p]) == 1
    for name, run, clips_written in (("first run", first_run, 2), ("resume", second_run, 1)):
        others = [m for m, p in run if not p.startswith(clips)]
        print(
            f"\n{name}: {len(run)} requests, {clips_written} clip PUTs, other: "
            + ", ".join(f"{m} {others.count(m)}" for m in sorted(set(others)))
        )


def test_preflight_names_bucket_and_cause(s3):
    with pytest.raises(ConfigError, match=r"bucket 'no-such-bucket' does not exist"):
        check_run_dir_writable(RunDir("s3://no-such-bucket/run", options(s3)))
    with pytest.raises(ConfigError, match=rf"access to bucket '{BUCKET}' was denied"):
        check_run_dir_writable(RunDir(f"s3://{BUCKET}/run", options(s3, secret="wrong")))
    with pytest.raises(ConfigError, match="private to one process"):
        check_run_dir_writable(RunDir("memory://promptreel-test/run"))
    run = RunDir(f"s3://{BUCKET}/preflight", options(s3))
    check_run_dir_writable(run)  # passes, and leaves nothing behind
    assert not run.fs.find(run.root)


def test_cli_refuses_missing_bucket_and_bad_credentials(s3, tmp_path):
    local = tmp_path / "prompts.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "a quiet harbour", "seed": 1}]), local)

    done = cli(
        "render", local, "--out", "s3://missing-bucket/run", "--no-progress", aws=aws_env(s3)
    )
    assert done.returncode == 2, done.stderr
    assert "bucket 'missing-bucket' does not exist" in done.stderr
    assert "Traceback" not in done.stderr and "Ray instance" not in done.stderr

    done = cli(
        "render",
        local,
        "--out",
        f"s3://{BUCKET}/denied",
        "--no-progress",
        aws=aws_env(s3, secret="wrong"),
    )
    assert done.returncode == 2, done.stderr
    assert f"access to bucket '{BUCKET}' was denied" in done.stderr
    assert "Traceback" not in done.stderr and "Ray instance" not in done.stderr

    done = cli("status", f"s3://{BUCKET}/runs/r1", aws=aws_env(s3, secret="wrong"))
    assert done.returncode == 2, done.stderr
    assert f"access to bucket '{BUCKET}' was denied" in done.stderr
