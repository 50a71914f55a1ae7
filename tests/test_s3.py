"""Manifest and run dir in a real S3-compatible server (moto_server on 127.0.0.1).

The server enforces IAM authentication (moto's reset-auth), so bad credentials are
refused as on AWS. The CLI runs as a real subprocess with its own Ray; its actors
write clips straight to the bucket. The server's request log counts round trips.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import ConfigError
from pipeline.rundir.layout import RunDir, check_run_dir_writable
from tests.conftest import REPO

BUCKET = "reels"
REGION = "us-east-1"
ADMIN = {"aws_access_key_id": "admin", "aws_secret_access_key": "admin"}
S3_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}
REQUEST_LINE = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto_server on a free loopback port, one IAM user allowed s3:*, then auth enforced."""
    import boto3

    port, log_path = free_port(), tmp_path_factory.mktemp("moto") / "requests.log"
    log = open(log_path, "w")  # noqa: SIM115 - the server writes it until teardown
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "moto_server down"
                time.sleep(0.1)
        iam = boto3.client("iam", endpoint_url=url, region_name=REGION, **ADMIN)
        iam.create_user(UserName="renderer")
        key = iam.create_access_key(UserName="renderer")["AccessKey"]
        iam.put_user_policy(UserName="renderer", PolicyName="s3", PolicyDocument=json.dumps(S3_ALL))
        enforce = urllib.request.Request(
            f"{url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(enforce, timeout=10).read()
        creds = {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
        }
        boto3.client("s3", endpoint_url=url, region_name=REGION, **creds).create_bucket(
            Bucket=BUCKET
        )
        yield SimpleNamespace(
            url=url, key=key["AccessKeyId"], secret=key["SecretAccessKey"], log=log_path
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def aws_env(s3, secret: str | None = None) -> dict:
    """The standard AWS environment, pointing at the moto server (and nowhere else)."""
    return {
        "AWS_ACCESS_KEY_ID": s3.key,
        "AWS_SECRET_ACCESS_KEY": secret or s3.secret,
        "AWS_ENDPOINT_URL": s3.url,
        "AWS_DEFAULT_REGION": REGION,
    }


def options(s3, secret: str | None = None) -> dict:
    """The same, as fsspec --storage-options."""
    return {
        "key": s3.key,
        "secret": secret or s3.secret,
        "client_kwargs": {"endpoint_url": s3.url, "region_name": REGION},
    }


def cli(*args, aws: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m pipeline ARGS` with no AWS settings but the ones given (no IMDS lookups)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "RAY_USAGE_STATS_ENABLED": "0",
            "HF_HUB_OFFLINE": "1",
            **(aws or {}),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fs_for(s3):
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, **options(s3))


def requests(s3) -> list[tuple[str, str]]:
    """(method, path) of every request the server has logged so far."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", s3.log.read_text())
    return REQUEST_LINE.findall(text)


def test_render_status_resume_in_bucket(s3):
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
        "--no-progress",
        "--flush-interval",
        "1",
        "--max-retries",
        "0",
        "--inject-fault",
        f"storage:{rows[1]['prompt']}",
        aws=aws_env(s3),
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
        "--no-progress",
        "--retry-failed",
        "--storage-options",
        json.dumps(options(s3)),
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
