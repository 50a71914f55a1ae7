"""Orchestration overhead: `--model null` end to end vs the bare encode limit.

    python -m bench.orchestration [--items 5000] [--quick] [--variants a1-e2 a2-e1]

The job: `python -m pipeline render MANIFEST --out RUN --model null` (plan -> Ray actors
-> null frames -> encode -> hash -> write -> ledger -> catalog), timed from spawn to exit.
The limit, measured in the same run: the same frames (NullPipeline().frames_for) encoded
with pipeline.outputs.encode.encode_clip by a multiprocessing pool of os.cpu_count() workers
(one ffmpeg per clip: the loop a user writes). The shared limit: the same pool, each task
encoding a batch's worth of clips with one ffmpeg (encode_many.encode_clips, as promptreel's
actors do), so "x shared limit" is the cost of everything but the encoder's process starts.
Also: the driver process's own CPU (psutil, not its Ray children) as % of one core.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import time
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import (
    Workdir,
    check_ok,
    header,
    machine,
    make_prompt,
    parse_variant,
    pipeline_cmd,
    run_measured,
    table,
    variant_flags,
    write_results,
)

DEFAULT_VARIANTS = ("a1-e2", "a2-e1")
SHAPE = (9, 64, 64)  # frames, height, width: the null family's defaults
FPS = 8.0
SHARED = 4  # clips per ffmpeg in the shared limit: a batch of the jobs' default size


def write_manifest(path, n: int) -> None:
    prompts = [make_prompt(i, 60) for i in range(n)]
    table_ = pa.table(
        {
            "id": [f"n{i:07d}" for i in range(n)],
            "prompt": prompts,
            "seed": pa.array(range(n), pa.uint64()),
        }
    )
    pq.write_table(table_, path)


def _encode_one(i: int) -> int:
    from pipeline.config import EncodeSettings
    from pipeline.models.null import NullPipeline
    from pipeline.outputs.encode import encode_clip

    frames = NullPipeline().frames_for(make_prompt(i, 60), i, *SHAPE)
    return len(encode_clip(frames, FPS, EncodeSettings()))


def _encode_shared(first: int, count: int) -> int:
    from pipeline.config import EncodeSettings
    from pipeline.models.null import NullPipeline
    from pipeline.outputs.encode_many import ClipJob, encode_clips

    jobs = [
        ClipJob(NullPipeline().frames_for(make_prompt(i, 60), i, *SHAPE), FPS)
        for i in range(first, first + count)
    ]
    return sum(len(data) for data in encode_clips(jobs, EncodeSettings()))


def measure_limit(n: int, processes: int, shared: int = 1) -> dict:
    """Pool of `processes` workers encoding the same frames, one ffmpeg per clip or per
    `shared` clips; wall from first task to last."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(_encode_one, range(processes))  # warm: imports done in every worker
        start = time.perf_counter()
        if shared > 1:
            tasks = [(first, min(shared, n - first)) for first in range(0, n, shared)]
            sizes = pool.starmap(_encode_shared, tasks)
        else:
            sizes = pool.map(_encode_one, range(n), chunksize=4)
        wall = time.perf_counter() - start
        pool.close()
        pool.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "wall_s": wall,
        "items_per_s": n / wall,
        "processes": processes,
        "clips_per_ffmpeg": shared,
        "cpu_s": cpu,
        "cpu_ms_per_item": 1000 * cpu / n,
        "mean_bytes": sum(sizes) / n,
    }


def run_job(work, manifest, n: int, name: str) -> dict:
    variant = {"actors": 1, "encode_workers": 2, **parse_variant(name)}
    out = work / f"run-{name}"
    cmd = pipeline_cmd("render", manifest, "--out", out, "--model", "null", *variant_flags(variant))
    measured = run_measured([*cmd, "--no-progress"], work / f"run-{name}.log", tree=True)
    check_ok(measured, f"promptreel render --model null ({name})")
    catalog = pq.read_table(out / "catalog.parquet", columns=["status", "finished_at"])
    stamps = catalog["finished_at"].to_pylist()
    finished = sorted(datetime.fromisoformat(t).timestamp() for t in stamps)
    summary = json.loads((out / "summary.json").read_text())
    first, last = finished[0], finished[-1]
    cpu_total = sum(measured.tree_cpu_s.values())
    return {
        "name": name,
        "variant": variant,
        "measured": measured,
        "items_per_s": n / measured.wall_s,
        "steady_items_per_s": (n - 1) / (last - first) if last > first else None,
        "first_clip_after_s": first - measured.started_at,
        "after_last_clip_s": measured.started_at + measured.wall_s - last,
        "job_wall_s": summary["wall_s"],
        "driver_cpu_pct_steady": measured.driver_cpu_pct_between(first, last),
        "cpu_s_total": cpu_total,
        "cpu_ms_per_item": 1000 * cpu_total / n,
        "ok": sum(s == "ok" for s in catalog["status"].to_pylist()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="200 items")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=list(DEFAULT_VARIANTS),
        help="promptreel settings aN-eN[-bN] (actors, encode workers, batch size); "
        "default: %(default)s",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args(argv)
    n = 200 if args.quick else args.items
    cores = os.cpu_count() or 1
    header(f"orchestration: --model null, {n} items of 64x64x9, vs the encode limit")
    with Workdir("orchestration", args.keep) as work:
        manifest = work / "manifest.parquet"
        write_manifest(manifest, n)
        # The limit before and after the jobs: on a shared machine the load drifts.
        limits = [measure_limit(n, cores)]
        shared = [measure_limit(n, cores, SHARED)]
        print(
            f"  limit ({cores} encode processes): {limits[0]['wall_s']:.1f}s, "
            f"shared: {shared[0]['wall_s']:.1f}s",
            flush=True,
        )
        jobs = []
        for name in args.variants:
            jobs.append(run_job(work, manifest, n, name))
            print(f"  job {name}: {jobs[-1]['measured'].wall_s:.1f}s", flush=True)
        shared.append(measure_limit(n, cores, SHARED))
        limits.append(measure_limit(n, cores))
        print(
            f"  limit again: {limits[1]['wall_s']:.1f}s, shared: {shared[1]['wall_s']:.1f}s",
            flush=True,
        )
    return report(n, cores, _mean(limits), jobs, _mean(shared))


def _mean(runs: list[dict]) -> dict:
    mean = {k: sum(x[k] for x in runs) / len(runs) for k in runs[0]}
    mean["runs_wall_s"] = [x["wall_s"] for x in runs]
    return mean


def report(n: int, cores: int, limit: dict, jobs: list[dict], shared: dict) -> dict:
    rows = [
        [f"limit: encode_clip x {cores} procs (mean)", limit["wall_s"], limit["items_per_s"], 1.0]
        + [shared["wall_s"] / limit["wall_s"], "-", "-", "-", "-", limit["cpu_ms_per_item"]]
        + ["-", "-"],
        [f"shared: {SHARED} clips per ffmpeg x {cores}", shared["wall_s"], shared["items_per_s"]]
        + [shared["items_per_s"] / limit["items_per_s"], 1.0, "-", "-", "-", "-"]
        + [shared["cpu_ms_per_item"], "-", "-"],
    ]
    for job in jobs:
        m = job["measured"]
        overhead_ms = 1000 * (m.wall_s - limit["wall_s"]) / n
        rows.append(
            [
                f"promptreel {job['name']}",
                m.wall_s,
                job["items_per_s"],
                job["items_per_s"] / limit["items_per_s"],
                job["items_per_s"] / shared["items_per_s"],
                job["steady_items_per_s"] / limit["items_per_s"],
                m.wall_s - n / job["steady_items_per_s"],
                overhead_ms,
                job["cpu_ms_per_item"] - limit["cpu_ms_per_item"],
                job["cpu_ms_per_item"],
                m.driver_cpu_pct,
                job["driver_cpu_pct_steady"],
            ]
        )
    headers = ["run", "wall s", "items/s", "x limit", "x shared", "steady x limit", "fixed s"]
    headers += ["+wall ms/item"]
    headers += ["+cpu ms/item", "cpu ms/item", "driver cpu %", "driver cpu % steady"]
    print()
    print(table(headers, rows))
    print("\n(+wall ms/item: (job wall - limit wall) / items, in wall time on all cores;")
    print(" +cpu ms/item: CPU of the whole process tree per item beyond the encode CPU;")
    print(
        f" limit runs before/after the jobs: {limit['runs_wall_s'][0]:.1f}s / "
        f"{limit['runs_wall_s'][1]:.1f}s; shared {shared['runs_wall_s'][0]:.1f}s / "
        f"{shared['runs_wall_s'][1]:.1f}s)"
    )
    for job in jobs:
        print(
            f"promptreel {job['name']}: first clip after {job['first_clip_after_s']:.1f}s, "
            f"{job['after_last_clip_s']:.1f}s after the last; job wall {job['job_wall_s']:.1f}s;"
            f" CPU s by role {job['measured'].tree_cpu_s}"
        )
    payload = {
        "benchmark": "orchestration",
        "machine": machine(),
        "items": n,
        "limit": limit,
        "shared_limit": shared,
        "table": {"headers": headers, "rows": rows},
        "jobs": [{**job, "measured": job["measured"].brief()} for job in jobs],
    }
    print(f"wrote {write_results('orchestration', payload)}")
    return payload


if __name__ == "__main__":
    main()
