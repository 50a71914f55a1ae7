"""Planning at scale: validate + plan a 1,000,000-row manifest, and a resume scan.

    python -m bench.scale [--rows 1000000] [--quick] [--models null tiny] [--profile]

Writes a generated Parquet manifest (~100-char prompts, several shapes, given ids), then
times `promptreel validate` and `promptreel plan` as subprocesses (wall, peak RSS from
wait4), for each model. Then builds a run dir whose ledger already holds every key of
the plan as finished (rows in LEDGER_SCHEMA, keys from pipeline.driver.job.load_and_plan) and
times `promptreel plan MANIFEST --out RUN` (reads the ledger and counts pending).
--profile adds a cProfile of that last command, in-process, top functions by own time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import re
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.common import (
    Workdir,
    check_ok,
    header,
    machine,
    make_prompt,
    pipeline_cmd,
    run_measured,
    table,
    write_results,
)

# (height, width, num_frames): valid for the null family and for Wan/tiny (16 | side, 4k+1)
SHAPES = ((64, 64, 9), (64, 128, 9), (128, 64, 17), (96, 96, 13), (128, 128, 5))
TARGETS = {"validate+plan_s": 30.0, "validate+plan_rss_mb": 2048.0, "resume_s": 10.0}


def write_manifest(path: Path, rows: int, seed: int = 7) -> dict:
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    shape = np.arange(rows) % len(SHAPES)
    table_ = pa.table(
        {
            "id": [f"r{i:08d}" for i in range(rows)],
            "prompt": [make_prompt(i, 100) for i in range(rows)],
            "seed": pa.array(rng.integers(0, 2**63, rows, dtype=np.uint64), pa.uint64()),
            "height": pa.array(np.array([s[0] for s in SHAPES])[shape]),
            "width": pa.array(np.array([s[1] for s in SHAPES])[shape]),
            "num_frames": pa.array(np.array([s[2] for s in SHAPES])[shape]),
            "source": pa.array(np.full(rows, "bench-scale")),  # a passthrough column
        }
    )
    pq.write_table(table_, path, compression="zstd")
    return {"rows": rows, "bytes": path.stat().st_size, "write_s": time.perf_counter() - started}


def build_finished_ledger(manifest: Path, run: Path, model: str, parts: int) -> dict:
    """A run dir whose ledger holds every planned key as ok (as after a finished run)."""
    from pipeline.config import EncodeSettings, RenderSettings, RunConfig
    from pipeline.driver.job import load_and_plan
    from pipeline.rundir.jobjson import claim, job_fingerprint
    from pipeline.rundir.layout import RunDir
    from pipeline.schema import LEDGER_SCHEMA

    started = time.perf_counter()
    settings = RenderSettings(model=model)
    config = RunConfig(manifest=str(manifest), out=str(run), render=settings)
    _, plan = load_and_plan(config)
    planned_s = time.perf_counter() - started
    keys = plan.items["key"].combine_chunks()
    n = len(keys)
    clip_dir = f"file://{run}/clips/"
    prefix = pc.utf8_slice_codeunits(keys, 0, 2)
    columns = {
        "key": keys,
        "status": pa.array(np.full(n, "ok")),
        "error": pa.nulls(n, pa.string()),
        "attempts": pa.array(np.ones(n, np.int32)),
        "uri": pc.binary_join_element_wise(clip_dir, prefix, "/", keys, ".mp4", ""),
        "bytes": pa.array(np.full(n, 21_000, np.int64)),
        "sha256": pc.binary_join_element_wise(keys, keys, ""),
        "frames_sha256": pc.binary_join_element_wise(keys, keys, ""),
        "render_s": pa.array(np.full(n, 0.1)),
        "encode_s": pa.array(np.full(n, 0.02)),
        "finished_at": pa.array(np.full(n, "2026-01-01T00:00:00.000+00:00")),
    }
    for field in LEDGER_SCHEMA:  # columns newer than this benchmark: null
        columns.setdefault(field.name, pa.nulls(n, field.type))
    ledger = pa.table(columns).cast(LEDGER_SCHEMA)
    rundir = RunDir(str(run))
    claim(rundir, job_fingerprint(settings, EncodeSettings()))
    ledger_dir = Path(rundir.ledger_dir)
    ledger_dir.mkdir(parents=True, exist_ok=True)
    step = -(-n // parts)
    for seq, start in enumerate(range(0, n, step)):
        name = f"part-{seq:012d}-bench{seq:03d}.parquet"
        pq.write_table(ledger.slice(start, step), ledger_dir / name, compression="zstd")
    return {"keys": n, "parts": parts, "plan_in_bench_s": planned_s}


def _pending(log: str) -> dict:
    text = Path(log).read_text(errors="replace")
    found = re.search(r"done: (\d+)\s+pending: (\d+)", text)
    return {"done": int(found[1]), "pending": int(found[2])} if found else {}


def profile_plan(manifest: Path, run: Path, model: str, top: int) -> str:
    from pipeline.cli import main as cli_main

    profiler = cProfile.Profile()
    sink = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()):
        profiler.enable()
        cli_main(["plan", str(manifest), "--out", str(run), "--model", model])
        profiler.disable()
    stats = pstats.Stats(profiler, stream=sink).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    return sink.getvalue()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    parser.add_argument("--models", nargs="*", default=["null", "tiny"])
    parser.add_argument("--ledger-parts", type=int, default=10, help="parts the ledger holds")
    parser.add_argument("--profile", action="store_true", help="cProfile the resume plan")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args(argv)
    rows = 20_000 if args.quick else args.rows
    header(f"scale: validate + plan of {rows:,} rows, and a resume scan")
    results: dict = {"runs": {}}
    with Workdir("scale", args.keep) as work:
        manifest = work / "manifest.parquet"
        results["manifest"] = write_manifest(manifest, rows)
        print(f"  manifest: {results['manifest']['bytes'] / 2**20:.1f} MiB Parquet", flush=True)
        for model in args.models:
            for command in ("validate", "plan"):
                name = f"{command} --model {model}"
                cmd = pipeline_cmd(command, manifest, "--model", model)
                m = run_measured(cmd, work / f"{command}-{model}.log")
                check_ok(m, name)
                results["runs"][name] = {**m.brief(), **_pending(m.log)}
                print(f"  {name}: {m.wall_s:.1f}s, {m.peak_rss_mb:.0f} MiB", flush=True)
        model = args.models[0]
        run = work / "run"
        results["ledger"] = build_finished_ledger(manifest, run, model, args.ledger_parts)
        name = f"plan --out RUN --model {model} (resume)"
        cmd = pipeline_cmd("plan", manifest, "--out", run, "--model", model)
        m = run_measured(cmd, work / "resume.log")
        check_ok(m, name)
        results["runs"][name] = {**m.brief(), **_pending(m.log)}
        print(f"  {name}: {m.wall_s:.1f}s, {m.peak_rss_mb:.0f} MiB", flush=True)
        if args.profile:
            results["profile"] = profile_plan(manifest, run, model, 25)
    return report(rows, results, args)


def report(rows: int, results: dict, args) -> dict:
    runs = results["runs"]
    table_rows = []
    for name, r in runs.items():
        pending = f"{r['done']:,}/{r['pending']:,}" if "done" in r else "-"
        table_rows.append([name, r["wall_s"], r["peak_rss_mb"], rows / r["wall_s"], pending])
    verdicts = []
    for model in args.models:
        v, p = runs[f"validate --model {model}"], runs[f"plan --model {model}"]
        both = v["wall_s"] + p["wall_s"]
        rss = max(v["peak_rss_mb"], p["peak_rss_mb"])
        table_rows.append([f"validate + plan ({model})", both, rss, rows / both, "-"])
        verdicts.append(
            f"{model}: validate+plan {both:.1f}s (target <= {TARGETS['validate+plan_s']:.0f}s; "
            f"plan alone {p['wall_s']:.1f}s), peak {rss:.0f} MiB "
            f"(target <= {TARGETS['validate+plan_rss_mb']:.0f} MiB)"
        )
    resume = runs[f"plan --out RUN --model {args.models[0]} (resume)"]
    plain = runs[f"plan --model {args.models[0]}"]
    verdicts.append(
        f"resume scan: {resume['wall_s']:.1f}s (target <= {TARGETS['resume_s']:.0f}s): validate, "
        f"keys, read {results['ledger']['keys']:,} ledger keys in {results['ledger']['parts']} "
        f"parts, 0 pending (the same plan with all pending: {plain['wall_s']:.1f}s)"
    )
    headers = ["command", "wall s", "peak RSS MiB", "rows/s", "done/pending"]
    print()
    print(table(headers, table_rows))
    print("\n" + "\n".join(verdicts))
    if "profile" in results:
        print("\ncProfile of the resume plan (in-process), top functions by own time:")
        print(results["profile"])
    payload = {
        "benchmark": "scale",
        "machine": machine(),
        "rows": rows,
        "targets": TARGETS,
        "table": {"headers": headers, "rows": table_rows},
        "verdicts": verdicts,
        **results,
    }
    print(f"wrote {write_results('scale', payload)}")
    return payload


if __name__ == "__main__":
    main()
