"""`ray job submit --working-dir . -- python -m jobs.render ...` against a real local Ray
head started by the test (loopback only, its own ports and temp dir, stopped by pid)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, prompt_rows, write_manifest

BIN = Path(sys.executable).parent


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def ray_env() -> dict:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `python` is this venv's
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keeps every Ray socket on 127.0.0.1
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "HF_HUB_OFFLINE": "1",
    }


@pytest.fixture
def ray_head():
    """`ray start --head --block` in its own session; torn down by its pid and group."""
    port, dash, client, agent, agent_grpc, env_agent, metrics = free_ports(7)
    temp_dir = tempfile.mkdtemp(prefix="prjs-", dir="/tmp")  # short: socket paths
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dash}",
            f"--ray-client-server-port={client}",
            f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={env_agent}",
            f"--metrics-export-port={metrics}",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        env=ray_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 120
        while not _job_server_up(address):
            assert head.poll() is None, f"ray start exited:\n{head.stdout.read()}"
            assert time.monotonic() < deadline, "the Ray job server did not come up"
            time.sleep(1)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)  # --block: Ray stops the processes it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        try:  # anything of that session still alive (only ours: it has its own group)
            os.killpg(head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(temp_dir, ignore_errors=True)


def _job_server_up(address: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{address}/api/version", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def test_ray_job_submit_renders_to_completion(ray_head, tmp_path):
    manifest = write_manifest(tmp_path / "prompts.parquet", prompt_rows(3, prefix="submitted"))
    out = tmp_path / "run"
    done = subprocess.run(
        [
            str(BIN / "ray"),
            "job",
            "submit",
            "--address",
            ray_head,
            "--working-dir",
            ".",
            "--",
            "python",
            "-m",
            "jobs.render",
            str(manifest),
            "--out",
            str(out),
            "--no-progress",
            "--flush-interval",
            "1",
            "--model",
            "null",  # the submission path is under test here, not the diffusion
        ],
        cwd=REPO,
        env=ray_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    logs = done.stdout + done.stderr
    assert done.returncode == 0, logs
    assert "succeeded" in logs and "3 ok, 0 failed (3 rendered this run)" in logs, logs
    assert "Started a local Ray instance" not in logs  # the job joined the head's cluster

    catalog = pq.read_table(out / "catalog.parquet").to_pylist()
    assert [row["status"] for row in catalog] == ["ok"] * 3
    assert all(Path(row["uri"].removeprefix("file://")).is_file() for row in catalog)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"ok": 3, "failed": 0, "pending": 0}
