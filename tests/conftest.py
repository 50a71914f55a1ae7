"""Shared fixtures: a loopback-only local Ray, the tiny model cache, manifest writers."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# Ray binds to 127.0.0.1 only with this set (measured, Ray 2.60; see design.md).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports off loopback
# Hub ids resolve to commits from a Hugging Face cache: never the network, never the
# developer's own cache (set before anything imports huggingface_hub; see hub_cache.py).
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="promptreel-test-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"
# S3 only through the moto server a test names, never the developer's credentials: the
# session's Ray (and so every actor a joined subprocess starts) holds no AWS_* either.
for _name in [name for name in os.environ if name.startswith("AWS_")]:
    del os.environ[_name]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
# Idle OpenMP threads sleep instead of spinning (torch's libgomp reads this when it loads,
# in this process, every subprocess and every Ray worker). The suite keeps 2 xdist workers,
# their actors' torch threads and ffmpeg on 2 cores: spinning threads burned the CPU the
# others waited for (measured: 3 heavy e2e files 148-152 s -> 118-134 s wall, 268-279 ->
# 210-245 CPU-s). Scheduling only: the same math runs, pixels are unchanged.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# torch picks its CPU kernels by instruction set (ATen's vector code, MKL's sgemm, oneDNN's
# convolutions), and the AVX-512 ones round differently: on an AVX-512 host the tiny
# models' pixels differ from those recorded on AVX2 hosts (tests/data's old run dir), and
# MKL's AVX-512 sgemm makes CLIP's batched text encoding differ from one text alone
# (measured on an AMD EPYC with AVX-512, 2026-12-07). The suite pins the AVX2 kernels in
# this process, every subprocess and every Ray worker, so recorded hashes hold on any x86
# host (set before anything imports torch; the product itself keeps the host's best).
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
os.environ.setdefault("MKL_CBWR", "AVX2")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

REPO = Path(__file__).resolve().parent.parent
# The longest e2e files (measured, issue 15) start first, so that under pytest-xdist
# (`make test`: -n 2 --dist loadfile) none of them starts last and runs alone.
SLOW_FIRST = (  # longest first (wall under `make test`): the files' tail ends together
    "test_hub_pinning.py",
    "test_families.py",
    "test_pixel_contract.py",
    "test_media_rows.py",
    "test_video_rows.py",
    "test_clean_stops.py",
    "test_media_families.py",
    "test_scoring.py",
    "test_e2e.py",
    "test_node_loss.py",
    "test_pixels.py",
    "test_media_remote.py",
    "test_lora.py",
    "test_export.py",
    "test_faults.py",
    "test_until.py",
    "test_resume.py",
    "test_s3.py",
    "test_ray_lifetime.py",
    "test_video_families.py",
    "test_early_exit.py",
    "test_job_submit.py",
    "test_variants.py",
)


def pytest_collection_modifyitems(items):
    """Slow e2e files first, then the other e2e files, then the unit tests; the order
    inside a file is kept (its module fixtures are shared)."""

    def rank(item) -> tuple:
        path = item.path
        slow = SLOW_FIRST.index(path.name) if path.name in SLOW_FIRST else len(SLOW_FIRST)
        return (path.parent.name != "e2e", slow)

    items.sort(key=rank)  # stable: files stay contiguous, their tests in order


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the in-process tests (4 logical CPUs: 2 actors + headroom)."""
    import ray

    # "local": a new Ray even when another `ray start` on this machine left its address.
    ray.init(
        address="local",
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    # In-process jobs hand their idle render actors to the next one (as a notebook may):
    # each actor process imports torch and diffusers once, not once per test (~7 CPU-s).
    # Subprocess drivers, whose process boundary is under test, never keep any.
    from pipeline.driver import warm_actors

    warm_actors.keep_at_most(2)
    yield ray
    warm_actors.keep_at_most(0)
    ray.shutdown()


def write_manifest(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> Path:
    columns = list(dict.fromkeys(name for row in rows for name in row))  # union, in order
    rows = [{name: row.get(name) for name in columns} for row in rows]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def prompt_rows(count: int, prefix: str = "prompt", **params) -> list[dict]:
    return [
        {"id": f"{prefix}-{i}", "prompt": f"{prefix} number {i}", "seed": 1000 + i, **params}
        for i in range(count)
    ]


def run_cli(*args: str, timeout: float = 300, env: dict | None = None, **kwargs):
    """Run `python -m pipeline ARGS` as a real subprocess (its own Ray)."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def read_catalog(run_dir: Path) -> pa.Table:
    return pq.read_table(run_dir / "catalog.parquet")


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """One S3-compatible server (moto_server on 127.0.0.1) for the whole test run."""
    from tests.support.s3 import moto_server

    yield from moto_server(tmp_path_factory)
