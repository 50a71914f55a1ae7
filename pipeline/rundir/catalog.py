"""The output catalog: one row per manifest row, results joined on the item key."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.arrow_io import parquet_bytes, read_parquet
from pipeline.rundir.layout import RunDir
from pipeline.schema import CATALOG_REQUEST_COLUMNS, RESULT_COLUMNS, catalog_columns


def build_catalog(rows: pa.Table, results: pa.Table, passthrough: tuple[str, ...]) -> pa.Table:
    """Manifest rows (in manifest order) + each key's latest result; unfinished -> pending."""
    index = pc.index_in(rows["key"], value_set=results["key"])
    columns = {name: rows[name] for name in CATALOG_REQUEST_COLUMNS}
    for name in RESULT_COLUMNS:
        columns[name] = pc.take(results[name], index)
    columns["status"] = pc.fill_null(columns["status"], "pending")
    columns["attempts"] = pc.fill_null(columns["attempts"], 0)
    for name in passthrough:
        columns[name] = rows[name]
    return pa.table({name: columns[name] for name in catalog_columns(passthrough)})


def write_catalog(run: RunDir, catalog: pa.Table) -> None:
    run.write(run.catalog, parquet_bytes(catalog))


def read_catalog(run: RunDir) -> pa.Table | None:
    data = run.read_bytes(run.catalog)
    return None if data is None else read_parquet(data)


def status_counts(catalog: pa.Table) -> dict[str, int]:
    counts = {"ok": 0, "failed": 0, "pending": 0}
    for entry in pc.value_counts(catalog["status"]).to_pylist():
        counts[entry["values"]] = entry["counts"]
    return counts


def write_summary(run: RunDir, summary: dict) -> None:
    run.write(run.summary, json.dumps(summary, indent=2, sort_keys=True).encode())
