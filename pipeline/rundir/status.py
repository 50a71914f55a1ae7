"""`promptreel status [--watch]`: progress of a run dir from its ledger, live or dead.

Reads the run dir only (job.json, the plan's keys, the ledger, the lock, summary.json), so
it works from any machine that can read the run dir, a bucket included.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import pyarrow.compute as pc

from pipeline.arrow_io import read_parquet
from pipeline.errors import ConfigError
from pipeline.rundir.jobjson import read_job
from pipeline.rundir.layout import RunDir
from pipeline.rundir.ledger import Ledger
from pipeline.rundir.lock import DriverLock

RATE_WINDOW_S = 300.0  # rate over the last five minutes of finished items
RECENT_FAILURES = 5


def run_status(run: RunDir) -> dict:
    if read_job(run) is None:
        raise ConfigError(f"{run.url} is not a promptreel run dir (no job.json)")
    plan_bytes = run.read_bytes(run.plan_keys)
    results = Ledger(run).read(columns=("status", "error", "finished_at"))
    if plan_bytes is not None:
        keys = read_parquet(plan_bytes)["key"]
        results = results.filter(pc.is_in(results["key"], value_set=keys))
        total = len(keys)
    else:
        total = results.num_rows
    ok = pc.sum(pc.equal(results["status"], "ok")).as_py() or 0
    failed = results.num_rows - ok
    pending = total - results.num_rows
    rate = _recent_rate(results["finished_at"].to_pylist())
    lock = DriverLock(run)
    holder = lock.holder()
    if holder is None:
        driver = "none running"
    elif lock.is_stale(holder):
        driver = f"dead (pid {holder.get('pid')} on {holder.get('host')}; stale lock)"
    else:
        driver = f"running (pid {holder.get('pid')} on {holder.get('host')})"
    return {
        "items": total,
        "counts": {"ok": ok, "failed": failed, "pending": pending},
        "rate_per_s": rate,
        "eta_s": pending / rate if rate else None,
        "driver": driver,
        "catalog": run.read_bytes(run.catalog) is not None and pending == 0,
        "recent_failures": _recent_failures(results),
        "stopped": _last_stop(run),
    }


def _recent_failures(results) -> list[dict]:
    failed = results.filter(pc.equal(results["status"], "failed"))
    rows = failed.select(["key", "error", "finished_at"]).to_pylist()
    rows.sort(key=lambda row: row["finished_at"] or "", reverse=True)
    return rows[:RECENT_FAILURES]


def _last_stop(run: RunDir) -> str | None:
    """Why the last run stopped early ("deadline", "SIGINT", ...), from summary.json."""
    data = run.read_bytes(run.summary)
    return json.loads(data).get("stopped") if data else None


def format_status(name: str, report: dict) -> str:
    counts = report["counts"]
    line = ", ".join(f"{counts[k]} {k}" for k in ("ok", "failed", "pending"))
    lines = [f"{name}: {line} of {report['items']} items", f"driver: {report['driver']}"]
    if report["rate_per_s"]:
        lines.append(f"rate: {report['rate_per_s']:.2f} items/s  ETA: {report['eta_s']:.0f}s")
    for failure in report["recent_failures"]:
        lines.append(
            f"failed {failure['key'][:12]} at {failure['finished_at']}: {failure['error']}"
        )
    if report["stopped"] and counts["pending"]:
        lines.append(f"last run stopped early ({report['stopped']}): the same command resumes")
    if report["catalog"]:
        lines.append("catalog.parquet written: the run is complete")
    return "\n".join(lines)


def watch(run: RunDir, name: str, interval_s: float, refreshes: int | None, out=None) -> dict:
    """Print the status every `interval_s` until `refreshes` are shown (None: until the run
    is complete or Ctrl-C). On a terminal each refresh replaces the previous one."""
    out = out or sys.stdout
    clear = "\x1b[H\x1b[2J" if out.isatty() else ""
    shown = 0
    while True:
        report = run_status(run)
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        out.write(f"{clear}{format_status(name, report)}\n(refreshed {stamp})\n\n")
        out.flush()
        shown += 1
        if (refreshes is not None and shown >= refreshes) or report["catalog"]:
            return report
        time.sleep(interval_s)


def _recent_rate(finished_at: list[str]) -> float | None:
    stamps = sorted(datetime.fromisoformat(s).timestamp() for s in finished_at if s)
    if len(stamps) < 2 or time.time() - stamps[-1] > RATE_WINDOW_S:
        return None
    recent = [s for s in stamps if s >= stamps[-1] - RATE_WINDOW_S]
    span = recent[-1] - recent[0]
    return (len(recent) - 1) / span if span > 0 else None
