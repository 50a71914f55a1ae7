"""Best of N: what scoring costs beside rendering (issue 17).

    python -m bench.scoring [--rows 64] [--repeats 3] [--quick] [--keep]

Three subprocesses, one after the other, on the same manifest (tiny model, 64x64, 9
frames, 4 steps; the tiny CLIP of tests/support/clip_checkpoint.py):
  (a) `render`                     -> render throughput
  (b) `render --score clip=CLIP`   -> the job's wall with scoring beside rendering
  (c) `score RUN_a --score clip`   -> scoring alone on a finished run (Ray start included)
Prints wall times, items/s and the ratio b/a (goal: scoring adds under 10% wall time);
`--repeats N` runs a and b N times each, interleaved, and compares their medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import (
    Workdir,
    check_ok,
    header,
    pipeline_cmd,
    run_measured,
    table,
    write_results,
)

RENDER = ("--model", "tiny", "--batch-size", "4", "--threads", "2", "--no-progress")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="16 rows")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run a and b this many times, interleaved (a shared machine's load drifts); "
        "the ratio of their medians is reported",
    )
    args = parser.parse_args(argv)
    rows = 16 if args.quick else args.rows
    from tests.support.clip_checkpoint import tiny_clip_dir

    clip = f"clip={tiny_clip_dir()}"
    header(f"scoring beside rendering: {rows} clips, tiny model, tiny CLIP")
    with Workdir("scoring", keep=args.keep) as work:
        manifest = work / "m.parquet"
        pq.write_table(
            pa.table(
                {
                    "prompt": [f"a slow pan over scene {i}" for i in range(rows)],
                    "seed": pa.array(np.arange(rows, dtype=np.uint64)),
                    "height": [64] * rows,
                    "width": [64] * rows,
                    "num_frames": [9] * rows,
                    "num_inference_steps": [4] * rows,
                }
            ),
            manifest,
        )
        runs = {
            "a: render": ("render", manifest, "--out", work / "a", *RENDER),
            "b: render --score clip": (
                "render",
                manifest,
                "--out",
                work / "b",
                *RENDER,
                "--score",
                clip,
            ),
            "c: score (existing run)": ("score", work / "a", "--score", clip),
        }
        walls: dict[str, list[float]] = {name: [] for name in runs}
        order = [*list(runs)[:2] * max(1, args.repeats), list(runs)[2]]
        for turn, name in enumerate(order):
            command = runs[name]
            if name != order[-1]:
                shutil.rmtree(work / ("a" if name.startswith("a") else "b"), ignore_errors=True)
            measured = run_measured(pipeline_cmd(*command), work / f"{name[0]}{turn}.log")
            check_ok(measured, name)
            walls[name].append(measured.wall_s)
            print(f"  {name}: {measured.wall_s:.1f}s", flush=True)
    a, b, c = (statistics.median(times) for times in walls.values())
    overhead = b / a - 1
    print(
        table(
            ["run", "wall s (median)", "runs", "clips/s"],
            [
                [
                    name,
                    round(statistics.median(t), 1),
                    len(t),
                    round(rows / statistics.median(t), 2),
                ]
                for name, t in walls.items()
            ],
        )
    )
    print(f"scoring adds {100 * overhead:.1f}% wall time beside rendering (goal < 10%)")
    print(f"scoring alone: {rows / c:.2f} clips/s vs rendering {rows / a:.2f} items/s")
    write_results(
        "scoring",
        {"rows": rows, "wall_s": walls, "overhead": round(overhead, 4), "goal": 0.10},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
