"""Variants (best of N): each manifest row asks for N renders of itself.

Variant i of a row is the row with seed `(seed + i) mod 2**64`; variant 0 is the row
itself, so one variant changes nothing (keys, ids, batches). N comes from the row's
`variants` cell, else from `--variants`. Rows expand in place (row 0's variants, then row
1's), so the catalog lists each row's variants together; `source_id` names the row (its
id, given or derived) and `variant` the index. Variant 0 keeps the row's id; variant i > 0
gets `<id>~v<i>` (documented in manifests/SCHEMA.md), refused when a given id already
takes it. Coverage first still holds: the composition ranks every variant 0 before any
variant 1 (plan/composition.py).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import ManifestError, RowProblem
from pipeline.plan.keys import derive_ids
from pipeline.schema import ROW, VARIANTS

VARIANT = "variant"
SOURCE_ID = "source_id"
VARIANT_ID_SEPARATOR = "~v"


def variant_id(source_id: str, variant: int) -> str:
    return source_id if variant == 0 else f"{source_id}{VARIANT_ID_SEPARATOR}{variant}"


def counts(table: pa.Table, default: int) -> np.ndarray:
    """Variants per validated row: the `variants` cell, else `default` (--variants)."""
    if VARIANTS not in table.column_names:
        return np.full(table.num_rows, default, np.int64)
    cells = pc.fill_null(table[VARIANTS], default)
    return np.asarray(cells.to_numpy(zero_copy_only=False), np.int64)


def expand(table: pa.Table, default: int) -> pa.Table:
    """One row per (row, variant), row-major, with a `variant` column and each variant's
    seed; every other column repeats its row's value."""
    per_row = counts(table, default)
    if (per_row == 1).all():
        return table.append_column(VARIANT, pa.array(np.zeros(table.num_rows, np.int32)))
    source = np.repeat(np.arange(table.num_rows), per_row)
    starts = np.concatenate([[0], np.cumsum(per_row)[:-1]])
    variant = np.arange(len(source)) - np.repeat(starts, per_row)
    expanded = table.take(pa.array(source))
    seeds = expanded["seed"].to_numpy().astype(np.uint64)
    seeds = seeds + variant.astype(np.uint64)  # uint64 arithmetic wraps: mod 2**64
    at = expanded.schema.get_field_index("seed")
    expanded = expanded.set_column(at, "seed", pa.array(seeds, pa.uint64()))
    return expanded.append_column(VARIANT, pa.array(variant.astype(np.int32)))


def ids_and_sources(table: pa.Table, keys: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(id, source_id) of each expanded row. Missing ids are derived from variant 0's key
    (as without variants); a variant's id that a given id already takes is refused."""
    variant = np.asarray(table[VARIANT].to_numpy(), np.int64)
    firsts = np.flatnonzero(variant == 0)
    given = table["id"].to_pylist()
    key_list = keys.to_pylist()
    if len(firsts) == len(variant) and None not in given:
        return table["id"], table["id"]
    sources = derive_ids([given[i] for i in firsts], [key_list[i] for i in firsts])
    per_row = np.diff(np.append(firsts, len(variant)))
    source_of = np.repeat(np.asarray(sources, object), per_row).tolist()
    ids = [variant_id(s, int(v)) for s, v in zip(source_of, variant.tolist())]
    _refuse_taken(table, ids, variant, sources)
    return pa.array(ids, pa.string()), pa.array(source_of, pa.string())


def _refuse_taken(table: pa.Table, ids: list[str], variant: np.ndarray, sources) -> None:
    rows = table[ROW].to_pylist()
    row_of_id = {source: rows[i] for source, i in zip(sources, np.flatnonzero(variant == 0))}
    problems = [
        RowProblem(
            row_of_id[name],
            name,
            "id",
            f"variant {int(variant[i])} of row {rows[i]} gets the id {name!r}, which this row "
            f"already has: rename this row's id (ids ending in {VARIANT_ID_SEPARATOR}<n> are "
            "how variants are named)",
        )
        for i, name in enumerate(ids)
        if variant[i] > 0 and name in row_of_id
    ]
    if problems:
        raise ManifestError(problems)
