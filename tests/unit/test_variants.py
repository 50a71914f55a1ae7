"""Variants (best of N) in the plan: seeds, ids, the `variants` column, coverage first."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.errors import ManifestError
from pipeline.plan.manifest import validate
from pipeline.plan.planner import make_plan
from pipeline.schema import reserved_reason

BIG = 2**64 - 1  # the largest seed: its variants wrap to 0, 1, ...


def _table(rows):
    columns = list(dict.fromkeys(k for r in rows for k in r))
    types = {"seed": pa.uint64()}  # seeds past 2**63 need the type spelled out
    return pa.table({c: pa.array([r.get(c) for r in rows], types.get(c)) for c in columns})


def _plan(rows, variants=1, batch_size=2):
    return make_plan(validate(_table(rows)), batch_size, variants)


ROWS = [
    {"id": "fox", "prompt": "a red fox", "seed": 7},
    {"prompt": "waves at dusk", "seed": BIG},  # id derived from its key
    {"id": "owl", "prompt": "an owl", "seed": 2**40},
]


def test_one_variant_changes_nothing():
    plain = make_plan(validate(_table(ROWS)), 2)
    one = _plan(ROWS, variants=1)
    for name in ("id", "key", "seed"):
        assert one.rows[name].to_pylist() == plain.rows[name].to_pylist()
    assert one.rows["variant"].to_pylist() == [0, 0, 0]
    assert one.rows["source_id"].to_pylist() == one.rows["id"].to_pylist()
    assert one.composition.batch_ids() == plain.composition.batch_ids()


def test_variants_add_seeds_modulo_2_64_with_stable_ids():
    plan = _plan(ROWS, variants=3)
    rows = plan.rows.to_pylist()
    derived = _plan(ROWS).rows["id"][1].as_py()
    assert [(r["id"], r["source_id"], r["variant"]) for r in rows] == [
        ("fox", "fox", 0),
        ("fox~v1", "fox", 1),
        ("fox~v2", "fox", 2),
        (derived, derived, 0),
        (f"{derived}~v1", derived, 1),
        (f"{derived}~v2", derived, 2),
        ("owl", "owl", 0),
        ("owl~v1", "owl", 1),
        ("owl~v2", "owl", 2),
    ]
    assert [r["seed"] for r in rows] == [7, 8, 9, BIG, 0, 1, 2**40, 2**40 + 1, 2**40 + 2]
    # variant 0 keeps its key; each variant is its own request
    assert plan.rows["key"].take([0, 3, 6]).to_pylist() == _plan(ROWS).rows["key"].to_pylist()
    assert len(set(plan.rows["key"].to_pylist())) == 9
    # the same as a manifest that lists those seeds itself
    listed = [{"prompt": r["prompt"], "seed": r["seed"]} for r in rows]
    assert plan.rows["key"].to_pylist() == _plan(listed).rows["key"].to_pylist()


def test_variants_column_overrides_the_flag_per_row():
    rows = [dict(ROWS[0], variants=2), dict(ROWS[1], variants=None), dict(ROWS[2], variants=1)]
    plan = _plan(rows, variants=3)
    assert plan.rows["variant"].to_pylist() == [0, 1, 0, 1, 2, 0]
    assert plan.rows["variants"].to_pylist() == [2, 2, None, None, None, 1]
    csv_text = _table([dict(r, variants=str(v)) for r, v in zip(ROWS, (" 2 ", "", "1"))])
    csv_text = csv_text.set_column(3, "variants", pa.array([" 2 ", None, "1"]))
    assert make_plan(validate(csv_text), 2, 1).rows.num_rows == 4


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", 10_001, True])
def test_a_bad_variants_cell_is_refused_naming_row_and_field(bad):
    rows = [dict(ROWS[0]), dict(ROWS[2], variants=bad)]
    with pytest.raises(ManifestError) as refused:
        validate(_table(rows))
    assert "row 1 (id 'owl'): variants: expected a whole number from 1 to 10000" in str(
        refused.value
    )


def test_a_given_id_that_a_variant_would_take_is_refused():
    rows = [ROWS[0], {"id": "fox~v1", "prompt": "another", "seed": 1}]
    assert _plan(rows).rows.num_rows == 2  # no variants: no clash
    with pytest.raises(ManifestError) as refused:
        _plan(rows, variants=2)
    message = str(refused.value)
    assert "row 1 (id 'fox~v1'): id:" in message and "variant 1 of row 0" in message


def test_every_variant_0_is_dispatched_before_any_variant_1():
    # Uneven prompts: "p" has four rows, "q" one; coverage by prompt alone would send q's
    # variant 1 (its 2nd request) before p's 3rd and 4th rows.
    rows = [{"prompt": "p", "seed": s} for s in (10, 20, 30, 40)] + [{"prompt": "q", "seed": 5}]
    plan = _plan(rows, variants=2, batch_size=2)
    variant_of = dict(zip(plan.rows["key"].to_pylist(), plan.rows["variant"].to_pylist()))
    order = [[variant_of[key] for key in batch.keys] for batch in plan.batches()]
    firsts = [variant for batch in order for variant in batch]
    last_zero = max(i for i, v in enumerate(firsts) if v == 0)
    first_one_only = next(i for i, batch in enumerate(order) if min(batch) == 1)
    assert sum(len(b) for b in order[:first_one_only]) > last_zero
    assert order[0] == [0, 0]


def test_variant_columns_are_reserved():
    for name in ("source_id", "variant", "Variant"):
        assert reserved_reason(name) is not None
    assert reserved_reason("variants") is None  # an input
