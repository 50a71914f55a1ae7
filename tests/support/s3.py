"""A real S3-compatible server (moto_server on 127.0.0.1) and clients pointed at it."""

from __future__ import annotations

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

from tests.conftest import REPO
from tests.support.runs import joined_env

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


def moto_server(tmp_path_factory):
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


def cli(
    *args, aws: dict | None = None, ray=None, timeout: float = 240
) -> subprocess.CompletedProcess:
    """`python -m pipeline ARGS` with no AWS settings but the ones given (no IMDS lookups).
    With `ray` (the session's), a render joins it as a submitted job whose actors get `aws`
    through the job's runtime_env instead of starting a local Ray (tests/support/runs.py)."""
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
    if ray is not None:
        env.update(joined_env(ray, **(aws or {})))
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
