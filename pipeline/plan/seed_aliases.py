"""Rows whose seeds differ but render the same video: torch's CPU generator uses only a
seed's low 32 bits, so two rows with the same request and seeds equal modulo 2**32 alias."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import RowProblem
from pipeline.models.families import PARAMS
from pipeline.schema import FLOAT_PARAMS, INT_PARAMS, MEDIA_HASH_COLUMNS, RESIZE, SEED_SPACE


def seed_aliases(table: pa.Table, ok: np.ndarray, strict: bool) -> list[RowProblem]:
    """Rows (among the `ok` ones) with the same request and different seeds equal mod 2**32."""
    seeds = table["seed"].to_numpy()
    low = seeds % np.uint64(SEED_SPACE)
    # Only rows whose low 32 bits are shared by two distinct seeds can alias: usually none.
    distinct = np.sort(pc.unique(pa.array(seeds[ok])).to_numpy() % np.uint64(SEED_SPACE))
    shared = pa.array(distinct[1:][distinct[1:] == distinct[:-1]])
    if not len(shared):
        return []
    aliased = pc.fill_null(pc.is_in(pa.array(low), value_set=shared), False)
    candidates = ok & np.asarray(aliased.to_numpy(zero_copy_only=False), bool)
    table = table.append_column("low", pa.array(low)).filter(pa.array(candidates))
    for name in PARAMS:  # nulls never match in a join: a sentinel no valid value takes
        table = table.set_column(
            table.schema.get_field_index(name),
            name,
            pc.fill_null(table[name].cast(pa.float64()), -1e300),
        )
    for name in (*MEDIA_HASH_COLUMNS, RESIZE):  # text rows: "" (no hash or policy is empty)
        table = table.set_column(
            table.schema.get_field_index(name), name, pc.fill_null(table[name], "")
        )
    request = ["prompt", "negative_prompt", "low", "model", *INT_PARAMS, *FLOAT_PARAMS, *PARAMS]
    request += [*MEDIA_HASH_COLUMNS, RESIZE]  # other images: another request, not an alias
    firsts = table.group_by(request, use_threads=False).aggregate([("row", "min")])
    joined = table.select(["row", "seed", *request]).join(firsts, request, use_threads=False)
    rows, seeds, ids = table["row"].to_numpy(), table["seed"].to_numpy(), table["id"].to_pylist()
    order = np.argsort(joined["row"].to_numpy(), kind="stable")
    at = np.searchsorted(rows, joined["row"].to_numpy()[order])  # positions in `table`
    first = np.searchsorted(rows, joined["row_min"].to_numpy()[order])
    alias = np.flatnonzero(seeds[at] != seeds[first])
    rows, seeds, problems = rows.tolist(), seeds.tolist(), []  # plain ints: fast in the loop
    for row, other in zip(at[alias].tolist(), first[alias].tolist(), strict=True):
        other_text = f"row {rows[other]}" + (f" (id {ids[other]!r})" if ids[other] else "")
        message = (
            f"seed {seeds[row]} equals the seed {seeds[other]} of {other_text} modulo "
            "2**32 for the same request: torch's CPU generator uses only the low 32 bits of a "
            "seed, so both rows render the same video once and share a clip"
            + ("; give a different seed" if strict else "")
        )
        problems.append(RowProblem(int(rows[row]), ids[row], "seed", message))
    return problems
