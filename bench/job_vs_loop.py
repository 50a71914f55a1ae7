"""promptreel render vs the plain loop a user would write, same requests, same machine.

    python -m bench.job_vs_loop [--prompts 256 --seeds 4] [--quick] [--variants ...]

(a) `python -m bench.plain_loop` (import, from_pretrained, loop, sequential ffmpeg);
(b) `python -m pipeline render MANIFEST --out RUN --batch-size 4 --threads 2 --no-progress`,
as variants: `default` (the CLI's `--actors auto`) and aN-tN-eN (actors, threads, encode
workers; Ray start included). Both are subprocesses timed from spawn to exit.
Prints wall times, items/s, the ratio (b)/(a), and checks that frames_sha256 of the
items agree (for variants with the loop's thread count; threads change pixels).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import (
    PY,
    Workdir,
    bench_env,
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

SEEDS = (101, 20260, 3048053658270753, 4294967296 + 7)  # the last one: low 32 bits = 7
DEFAULT = "default"  # the CLI's defaults: --actors auto, 2 threads, 2 encode workers
DEFAULT_VARIANTS = (DEFAULT, "a1-t2-e2")
ALL_VARIANTS = (DEFAULT, "a1-t2-e2", "a2-t2-e1", "a1-t2-e1", "a2-t1-e1", "a2-t1-e2")


def write_manifest(path: Path, prompts: int, seeds: int) -> int:
    rows = [
        {
            "id": f"p{p:05d}-s{s}",
            "prompt": make_prompt(p, 80),
            "negative_prompt": "",
            "seed": SEEDS[s % len(SEEDS)] + (s // len(SEEDS)) * 1000,
            "height": 64,
            "width": 64,
            "num_frames": 9,
            "fps": 8.0,
            "num_inference_steps": 4,
            "guidance_scale": 5.0,
        }
        for p in range(prompts)
        for s in range(seeds)
    ]
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("prompt", pa.string()),
            ("negative_prompt", pa.string()),
            ("seed", pa.uint64()),
            ("height", pa.int64()),
            ("width", pa.int64()),
            ("num_frames", pa.int64()),
            ("fps", pa.float64()),
            ("num_inference_steps", pa.int64()),
            ("guidance_scale", pa.float64()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return len(rows)


def run_loop(work: Path, manifest: Path, tag: str, batch_size: int, env: dict) -> dict:
    out = work / f"loop-{tag}"
    cmd = [PY, "-m", "bench.plain_loop", manifest, "--out", out, "--batch-size", batch_size]
    measured = run_measured(cmd, work / f"loop-{tag}.log", env=env)
    check_ok(measured, "plain loop")
    inner = json.loads((out / "_loop.json").read_text())
    return {"measured": measured, "inner": inner, "hashes": inner.pop("frames_sha256")}


def run_job(work: Path, manifest: Path, tag: str, variant: str, batch_size: int, env) -> dict:
    v = {"threads": 2, "encode_workers": 2, "batch_size": batch_size}
    if variant != DEFAULT:
        v = {"actors": 1, **v, **parse_variant(variant)}
    out = work / f"run-{tag}-{variant}"
    cmd = pipeline_cmd("render", manifest, "--out", out, *variant_flags(v), "--no-progress")
    measured = run_measured(cmd, work / f"run-{tag}-{variant}.log", tree=True, env=env)
    check_ok(measured, f"promptreel render ({variant})")
    catalog = pq.read_table(out / "catalog.parquet").to_pylist()
    summary = json.loads((out / "summary.json").read_text())
    finished = sorted(datetime.fromisoformat(r["finished_at"]).timestamp() for r in catalog)
    steady = (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 1 else None
    inner = {
        "job_wall_s": summary["wall_s"],  # run_job: after imports and argument parsing
        "actors": summary["actors"],  # what `default` (--actors auto) chose
        "first_clip_after_s": finished[0] - measured.started_at,
        "after_last_clip_s": measured.started_at + measured.wall_s - finished[-1],
        "steady_items_per_s": steady,
        "render_s_sum": sum(r["render_s"] or 0 for r in catalog),
        "encode_s_sum": sum(r["encode_s"] or 0 for r in catalog),
        "ok": sum(r["status"] == "ok" for r in catalog),
    }
    hashes = {r["id"]: r["frames_sha256"] for r in catalog}
    return {"measured": measured, "inner": inner, "hashes": hashes, "variant": v, "name": variant}


def compare_hashes(loop: dict, job: dict, sample: int) -> dict:
    ids = sorted(loop)
    same = [i for i in ids if job.get(i) == loop[i]]
    step = max(1, len(ids) // sample)
    shown = ids[::step][:sample]
    return {
        "compared": len(ids),
        "identical": len(same),
        "sample": {i: [loop[i][:16], (job.get(i) or "")[:16]] for i in shown},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="8 prompts x 4 seeds = 32 requests")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=list(DEFAULT_VARIANTS),
        help="promptreel settings aN-tN-eN (actors, threads, encode workers), or "
        f"'{DEFAULT}' (no --actors: auto); 'all' for "
        f"{' '.join(ALL_VARIANTS)} (default: %(default)s)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="alternate loop/job N times")
    parser.add_argument("--sample", type=int, default=8, help="hashes to print")
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE for both sides: on a shared machine torch's spinning "
        "OpenMP threads made plain-process calls 5-10x slower (same pixels either way)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.prompts = 8
    variants = list(ALL_VARIANTS) if args.variants == ["all"] else args.variants
    env = bench_env(**({"OMP_WAIT_POLICY": "PASSIVE"} if args.omp_passive else {}))
    header("job_vs_loop: promptreel render vs a plain diffusers + ffmpeg-python loop")

    with Workdir("job_vs_loop", args.keep) as work:
        manifest = work / "manifest.parquet"
        n = write_manifest(manifest, args.prompts, args.seeds)
        print(f"{n} requests ({args.prompts} prompts x {args.seeds} seeds), 64x64x9, 4 steps")
        if args.omp_passive:
            print("OMP_WAIT_POLICY=PASSIVE for both sides")
        loops, jobs = [], []
        for rep in range(args.repeat):
            loops.append(run_loop(work, manifest, str(rep), args.batch_size, env))
            print(f"  loop  #{rep}: {loops[-1]['measured'].wall_s:.1f}s", flush=True)
            for variant in variants:
                jobs.append(run_job(work, manifest, str(rep), variant, args.batch_size, env))
                print(f"  {variant} #{rep}: {jobs[-1]['measured'].wall_s:.1f}s", flush=True)
    return report(n, loops, jobs, variants, args)


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def report(n: int, loops: list[dict], jobs: list[dict], variants: list[str], args) -> dict:
    loop_wall = _median([r["measured"].wall_s for r in loops])
    loop_steady = _median([n / r["inner"]["loop_s"] for r in loops])
    rows = [["(a) plain loop", loop_wall, n / loop_wall, 1.0, loop_steady]]
    rows[0] += [loop_wall - n / loop_steady, "-", "-"]
    results = {"loop": [], "jobs": {}}
    for r in loops:
        results["loop"].append({**r["measured"].brief(), "inner": r["inner"]})
    first = loops[0]["inner"]
    hash_checks = {}
    for variant in variants:
        runs = [j for j in jobs if j["name"] == variant]
        wall = _median([j["measured"].wall_s for j in runs])
        check = "n/a (threads differ)"
        v = runs[0]["variant"]
        if v["threads"] == 2 and v["batch_size"] == args.batch_size:  # the loop's numerics
            hc = compare_hashes(loops[0]["hashes"], runs[0]["hashes"], args.sample)
            hash_checks[variant] = hc
            check = f"{hc['identical']}/{hc['compared']}"
        driver = _median([j["measured"].driver_cpu_pct for j in runs])
        steady = _median([j["inner"]["steady_items_per_s"] or n / wall for j in runs])
        rows.append([f"(b) promptreel {variant}", wall, n / wall, wall / loop_wall, steady])
        rows[-1] += [wall - n / steady, check, driver]
        results["jobs"][variant] = [
            {**j["measured"].brief(), "inner": j["inner"], "variant": j["variant"]} for j in runs
        ]
    print()
    headers = ["run", "wall s", "items/s", "ratio b/a", "steady items/s", "fixed s"]
    headers += ["same frames", "driver cpu %"]
    print(table(headers, rows))
    print("(steady: the loop's items / loop time; promptreel's from its clips' finished_at;")
    print(" fixed s = wall - items / steady: process start, imports, Ray, model load, teardown)")
    print(
        f"\nplain loop inside: import {first['import_s']:.1f}s, load {first['load_s']:.1f}s, "
        f"render {first['render_s']:.1f}s, encode {first['encode_s']:.1f}s"
    )
    for variant in variants:
        inner = results["jobs"][variant][0]["inner"]
        tree = results["jobs"][variant][0]["tree_cpu_s"]
        print(
            f"promptreel {variant} ({inner['actors']} actors): first clip after "
            f"{inner['first_clip_after_s']:.1f}s, exit "
            f"{inner['after_last_clip_s']:.1f}s after the last, "
            f"steady {inner['steady_items_per_s'] or 0:.1f} items/s, job wall "
            f"{inner['job_wall_s']:.1f}s; CPU s by role {tree}"
        )
    for variant, hc in hash_checks.items():
        pairs = ", ".join(
            f"{i} {a[:8]}{'==' if a == b else '!='}{b[:8]}" for i, (a, b) in hc["sample"].items()
        )
        print(f"frames_sha256 loop vs {variant}, sample: {pairs}")
    best = min(variants, key=lambda v: _median([j["wall_s"] for j in results["jobs"][v]]))
    print(f"best on this machine: {best}")
    payload = {
        "benchmark": "job_vs_loop",
        "machine": machine(),
        "requests": n,
        "prompts": args.prompts,
        "seeds": args.seeds,
        "batch_size": args.batch_size,
        "repeat": args.repeat,
        "omp_passive": args.omp_passive,
        "table": {"headers": headers, "rows": rows},
        "hash_checks": hash_checks,
        "best_variant": best,
        "runs": results,
    }
    print(f"wrote {write_results('job_vs_loop', payload)}")
    return payload


if __name__ == "__main__":
    main()
