"""What the outputs cost: encode per format, thumbnail, QC, and report.html for 100k rows
(build time in Python, open time in headless Chromium).

    .venv/bin/python -m bench.outputs [--rows 100000] [--repeat 3]

Frames are tiny-model-like noise (the worst case for every codec). Times are per clip,
the median of --repeat runs, on a shared machine: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS
from pipeline.config import EncodeSettings
from pipeline.outputs import qc
from pipeline.outputs.thumbnail import make_thumbnail

SHAPES = {"64x64x9": (9, 64, 64, 3), "256x256x17": (17, 256, 256, 3)}
BIG = (81, 480, 832, 3)  # Wan 1.3B's default clip: thumbnail and QC only (codecs take s)


def _timed(repeat: int, fn, *args) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def encode_costs(repeat: int) -> list[dict]:
    from pipeline.outputs.encode import encode_clip

    rows = []
    for label, shape in SHAPES.items():
        frames = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        for fmt in ("mp4", "webm", "gif", "webp", "png"):
            seconds, data = _timed(repeat, encode_clip, frames, 8, EncodeSettings(format=fmt))
            rows.append(
                {"what": f"encode {fmt}", "clip": label, "ms": seconds * 1e3, "bytes": len(data)}
            )
    for label, shape in {**SHAPES, "832x480x81": BIG}.items():
        frames = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        seconds, data = _timed(repeat, make_thumbnail, frames, 16)
        rows.append({"what": "thumbnail", "clip": label, "ms": seconds * 1e3, "bytes": len(data)})
        seconds, _ = _timed(repeat, qc.check, frames, "flag")
        rows.append({"what": "qc", "clip": label, "ms": seconds * 1e3, "bytes": None})
    return rows


def report_costs(rows: int, repeat: int) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_report_browser import CHROMIUM_ARGS
    from tests.support.report_fixture import make_run_dir

    work = Path(tempfile.mkdtemp(prefix="promptreel-bench-report-"))
    try:
        run, catalog = make_run_dir(work / "run", rows, thumbs_for=240)
        from pipeline.report import write_report

        context = {"counts": {}, "encode": {"format": "mp4"}, "qc": "flag"}
        build_s, _ = _timed(repeat, write_report, run, catalog, context)
        size = Path(run.report).stat().st_size
        opens = []
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            for _ in range(repeat):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                # Main-thread busy time from Chromium itself: on a shared, overloaded machine
                # wall time mostly measures waiting for a core; this is the work.
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                started = time.perf_counter()
                page.goto(Path(run.report).as_uri(), wait_until="load")
                page.wait_for_selector(".card")
                wall = time.perf_counter() - started
                load_ms = page.evaluate(
                    "performance.getEntriesByType('navigation')[0].loadEventEnd"
                )
                metrics = {
                    m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]
                }
                opens.append(
                    {"wall_s": wall, "load_event_ms": load_ms, "task_s": metrics["TaskDuration"]}
                )
                page.close()
            browser.close()
        return {
            "rows": rows,
            "html_bytes": size,
            "build_s": build_s,
            "open_wall_s": statistics.median(o["wall_s"] for o in opens),
            "load_event_ms": statistics.median(o["load_event_ms"] for o in opens),
            "main_thread_task_s": statistics.median(o["task_s"] for o in opens),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--report-only", action="store_true", help="skip the encode costs")
    args = parser.parse_args()
    costs = [] if args.report_only else encode_costs(args.repeat)
    print(f"{'what':<14} {'clip':<12} {'ms':>9} {'bytes':>10}")
    for row in costs:
        print(f"{row['what']:<14} {row['clip']:<12} {row['ms']:>9.1f} {row['bytes'] or '':>10}")
    report = report_costs(args.rows, args.repeat)
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "outputs.json").write_text(json.dumps({"costs": costs, "report": report}, indent=2))


if __name__ == "__main__":
    main()
