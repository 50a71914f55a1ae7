"""The output catalog: one row per manifest row (per variant), results and scores joined
on the item key, and which variants are kept."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.arrow_io import parquet_bytes, read_parquet
from pipeline.rundir.layout import RunDir
from pipeline.schema import (
    CATALOG_REQUEST_COLUMNS,
    RESULT_COLUMNS,
    SCORE_ERRORS,
    SCORE_PREFIX,
    SELECTED,
    catalog_columns,
)
from pipeline.score.selection import Selection, selected


def build_catalog(
    rows: pa.Table,
    results: pa.Table,
    passthrough: tuple[str, ...],
    scores: dict[str, pa.Table] | None = None,
    selection: Selection | None = None,
) -> pa.Table:
    """Manifest rows (in manifest order, each row's variants together) + each key's latest
    result; unfinished -> pending. Then the scores (see with_scores)."""
    index = pc.index_in(rows["key"], value_set=results["key"])
    columns = {name: rows[name] for name in CATALOG_REQUEST_COLUMNS}
    for name in RESULT_COLUMNS:
        columns[name] = pc.take(results[name], index)
    columns["status"] = pc.fill_null(columns["status"], "pending")
    columns["attempts"] = pc.fill_null(columns["attempts"], 0)
    for name in passthrough:
        columns[name] = rows[name]
    table = pa.table({name: columns[name] for name in catalog_columns(passthrough)})
    return with_scores(table, passthrough, scores or {}, selection)


def with_scores(
    catalog: pa.Table,
    passthrough: tuple[str, ...],
    scores: dict[str, pa.Table],
    selection: Selection | None = None,
) -> pa.Table:
    """The catalog with score_<name> per scorer, score_errors and selected (replacing any
    it had). `scores`: per scorer, its latest rows for the run's scorer id
    (SCORE_LEDGER_SCHEMA), joined on the key; a row whose clip is not the one scored
    (re-rendered since) has no score."""
    catalog = _completed(catalog, passthrough)
    columns = {name: catalog[name] for name in catalog_columns(passthrough)}
    errors = []
    for name, table in scores.items():
        at = pc.index_in(catalog["key"], value_set=table["key"])
        current = pc.fill_null(pc.equal(pc.take(table["sha256"], at), catalog["sha256"]), False)
        value = pc.take(table["value"], at)
        columns[SCORE_PREFIX + name] = pc.if_else(current, value, pa.scalar(None, pa.float64()))
        error = pc.take(table["error"], at)
        error = pc.if_else(pc.and_(current, pc.invert(pc.equal(error, ""))), error, None)
        errors.append(pc.binary_join_element_wise(pa.scalar(f"{name}: "), error, ""))
    if scores:
        columns[SCORE_ERRORS] = errors[0] if len(errors) == 1 else _join_present(errors)
        scored = pa.table({k: columns[k] for k in ("source_id", "variant", *_names(scores))})
        columns[SELECTED] = selected(scored, selection or Selection())
    return pa.table({name: columns[name] for name in catalog_columns(passthrough, tuple(scores))})


def _completed(catalog: pa.Table, passthrough: tuple[str, ...]) -> pa.Table:
    """A catalog written by older code, with the columns added since: each row is its own
    variant 0 (source_id = id), media columns are null (text rows)."""
    filled = {"source_id": catalog["id"], "variant": pa.array([0] * catalog.num_rows, pa.int32())}
    for name in catalog_columns(passthrough):
        if name not in catalog.column_names:
            column = filled.get(name, pa.nulls(catalog.num_rows, pa.string()))
            catalog = catalog.append_column(name, column)
    return catalog


def passthrough_of(catalog: pa.Table) -> tuple[str, ...]:
    """The manifest's passthrough columns of a written catalog (what the schema does not own)."""
    owned = set(catalog_columns())
    return tuple(
        name
        for name in catalog.column_names
        if name not in owned and not name.startswith(SCORE_PREFIX) and name != SELECTED
    )


def _names(scores: dict) -> list[str]:
    return [SCORE_PREFIX + name for name in scores]


def _join_present(parts: list) -> pa.Array:
    """'clip: ...; motion: ...' from the errors present per row (null when none)."""
    texts = [[t for t in row if t] for row in zip(*(p.to_pylist() for p in parts))]
    return pa.array(["; ".join(t) if t else None for t in texts], pa.string())


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
