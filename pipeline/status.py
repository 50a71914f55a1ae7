"""`promptreel status`: progress of a run dir from its ledger, live or dead."""

from __future__ import annotations

import time
from datetime import datetime

import pyarrow.compute as pc

from pipeline.arrow_io import read_parquet
from pipeline.errors import ConfigError
from pipeline.ledger import Ledger
from pipeline.lock import DriverLock
from pipeline.storage import RunDir

RATE_WINDOW_S = 300.0  # rate over the last five minutes of finished items


def run_status(run: RunDir) -> dict:
    if run.read_bytes(run.job_json) is None:
        raise ConfigError(f"{run.url} is not a promptreel run dir (no job.json)")
    plan_bytes = run.read_bytes(run.path("_state", "plan_keys.parquet"))
    results = Ledger(run).read(columns=("status", "finished_at"))
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
    }


def _recent_rate(finished_at: list[str]) -> float | None:
    stamps = sorted(datetime.fromisoformat(s).timestamp() for s in finished_at if s)
    if len(stamps) < 2 or time.time() - stamps[-1] > RATE_WINDOW_S:
        return None
    recent = [s for s in stamps if s >= stamps[-1] - RATE_WINDOW_S]
    span = recent[-1] - recent[0]
    return (len(recent) - 1) / span if span > 0 else None
