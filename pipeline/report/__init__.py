"""report.html: what a person opens in the morning (or during the run).

data.py   what the page shows, from a catalog (or plan rows + ledger, during the run)
page.py   the page template: escaping, CSP, sections; assets.py its style and script
chart.py  throughput over time as inline SVG
live.py   the rewrite every few minutes from the driver's tick
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow as pa

from pipeline.report.data import build_report_data
from pipeline.report.page import render_page
from pipeline.rundir.layout import RunDir


def render_report(catalog: pa.Table, context: dict) -> str:
    return render_page(build_report_data(catalog, context))


def write_report(run: RunDir, catalog: pa.Table, context: dict, final: bool = True) -> None:
    """Atomically (re)write report.html. `context` is summary.json-like: counts, render,
    encode, qc, versions, manifest; the model fingerprint is read from job.json."""
    context = {
        **context,
        "final": final,
        "written_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
    }
    recorded = run.read_bytes(run.job_json)
    if recorded is not None:
        context.setdefault("model_fingerprint", json.loads(recorded).get("model"))
    run.write(run.report, render_report(catalog, context).encode("utf-8"))
