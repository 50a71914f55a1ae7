"""Planned batches over ALL items, coverage-first dispatch, priority (no Ray, no model)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.errors import ManifestError
from pipeline.plan.composition import with_planned_batches
from pipeline.plan.manifest import validate
from pipeline.plan.planner import make_plan


def _plan(rows, batch_size=3):
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
    return make_plan(validate(table), batch_size)


def _grid(prompts=7, seeds=3, name="prompt", **extra):
    """Manifest order: every seed of prompt 0, then every seed of prompt 1, ..."""
    return [
        {"prompt": f"{name} {p}", "seed": 100 * p + s, **extra}
        for p in range(prompts)
        for s in range(seeds)
    ]


def _composition(batches):
    return sorted((tuple(i.key for i in b.items), b.size) for b in batches)


def test_planned_batches_do_not_depend_on_what_is_done():
    rows = _grid() + [{"prompt": f"wide {i}", "seed": i, "width": 96} for i in range(4)]
    plan = _plan(rows)
    clean = list(plan.batches())
    keys = plan.items["key"]
    for pending in (keys.take([0]), keys.take(list(range(0, len(keys), 2))), keys):
        resumed = list(plan.batches(pending))
        # Every planned batch with a pending item runs whole; done mates are padding.
        wanted = set(pending.to_pylist())
        expected = [b for b in clean if wanted & {i.key for i in b.items}]
        assert [(b.items, b.size) for b in resumed] == [(b.items, b.size) for b in expected]
        assert sorted(k for b in resumed for k in b.keys) == sorted(wanted)
    # Rows of other prompts in another order: the same ranks, the same batches.
    by_prompt = sorted(rows, key=lambda r: r["prompt"], reverse=True)
    assert _composition(_plan(by_prompt).batches()) == _composition(clean)


def test_batch_ids_are_stable_and_name_the_composition():
    plan = _plan(_grid())
    first = [b.batch_id for b in plan.batches()]
    assert first == [b.batch_id for b in _plan(_grid()).batches()]
    assert len(set(first)) == len(first)
    assert [b.batch_id for b in _plan(_grid(), batch_size=2).batches()] != first


def test_coverage_first_every_prompt_before_any_second_seed():
    prompts, seeds = 7, 3
    plan = _plan(_grid(prompts, seeds))
    order = [item for batch in plan.batches() for item in batch.items]
    first_seen: dict[str, int] = {}
    ranks = []
    for item in order:  # rank: how many earlier requests of this prompt were dispatched
        ranks.append(first_seen.get(item.prompt, 0))
        first_seen[item.prompt] = ranks[-1] + 1
    assert len(order) == prompts * seeds
    # All first requests come first, then all second ones, then the third.
    assert ranks == sorted(ranks)
    first_requests = {item.prompt: item.seed for item in reversed(order[:prompts])}
    assert first_requests == {f"prompt {p}": 100 * p for p in range(prompts)}  # manifest order


def test_coverage_is_breadth_first_across_buckets():
    rows = _grid(4, 2) + _grid(4, 2, name="wide", width=96)
    plan = _plan(rows, batch_size=2)
    widths_and_seeds = [(b.items[0].width, b.items[0].seed % 100) for b in plan.batches()]
    # Seed index 0 of both buckets before seed index 1 of either (rank, then bucket).
    assert [s for _, s in widths_and_seeds] == sorted(s for _, s in widths_and_seeds)
    assert {w for w, s in widths_and_seeds if s == 0} == {64, 96}


def test_priority_orders_dispatch_but_never_the_composition():
    rows = _grid(6, 2)
    urgent = {"prompt 4", "prompt 5"}
    with_priority = [{**r, "priority": 5 if r["prompt"] in urgent else None} for r in rows]
    plain, prioritised = _plan(rows), _plan(with_priority)
    assert plain.items["key"] == prioritised.items["key"]  # not part of the key
    assert _composition(plain.batches()) == _composition(prioritised.batches())
    dispatched = list(prioritised.batches())
    has_urgent = [bool(urgent & {i.prompt for i in b.items}) for b in dispatched]
    # Batches holding an urgent request go first (their mates ride along).
    assert has_urgent == sorted(has_urgent, reverse=True) and any(has_urgent)
    catalog_priority = prioritised.rows["priority"].to_pylist()
    assert catalog_priority == [5.0 if r["prompt"] in urgent else 0.0 for r in rows]


def test_bad_priority_is_refused_by_row_and_field():
    rows = [
        {"prompt": "a", "seed": 1, "priority": "high"},
        {"prompt": "b", "seed": 2, "priority": "2.5"},
        {"prompt": "c", "seed": 3, "priority": "inf"},
    ]
    with pytest.raises(ManifestError) as caught:
        _plan(rows)
    problems = [(p.row, p.field) for p in caught.value.problems]
    assert problems == [(0, "priority"), (2, "priority")]
    assert "a finite number" in str(caught.value)


def test_pending_buckets_count_planned_batches_that_must_run():
    plan = _plan(_grid(4, 3), batch_size=3)  # 12 items: four batches of 3
    keys = [k for b in plan.batches() for k in b.keys]
    pending = pa.array([keys[0], keys[3], keys[4]])  # two items of batch 1, one of batch 0
    (bucket,) = plan.pending_buckets(pending)
    assert (bucket["items"], bucket["batches"]) == (3, 2)


def test_catalog_rows_not_rendered_get_their_planned_batch():
    plan = _plan(_grid(3, 2), batch_size=4)
    batches = list(plan.batches())
    catalog = plan.rows.select(["key"]).append_column(
        "batch_id", pa.nulls(plan.rows.num_rows, pa.string())
    )
    catalog = catalog.append_column("batch_pos", pa.nulls(plan.rows.num_rows, pa.int32()))
    filled = with_planned_batches(catalog, plan.items, plan.composition)
    planned = {i.key: (b.batch_id, b.position(i.key)) for b in batches for i in b.items}
    got = dict(
        zip(
            filled["key"].to_pylist(),
            zip(*[filled[c].to_pylist() for c in ("batch_id", "batch_pos")]),
        )
    )
    assert got == planned
    assert pc.all(pc.is_valid(filled["batch_id"])).as_py()


def test_verify_rebuilds_the_batch_an_item_was_rendered_in():
    from pipeline.driver.verify import rendered_batch
    from pipeline.schema import ITEM_FIELDS

    plan = _plan(_grid(3, 2), batch_size=4)
    batches = list(plan.batches())
    records = []
    for batch in batches:
        for item in batch.items:
            row = {n: getattr(item, n, item.family_args().get(n)) for n in ITEM_FIELDS}
            records.append(
                {
                    **row,
                    "batch_id": batch.batch_id,
                    "batch_pos": batch.position(item.key),
                    "isolated": False,
                }
            )
    catalog = pa.Table.from_pylist(records)
    for batch in batches:
        for position, item in enumerate(batch.items):
            row = next(r for r in records if r["key"] == item.key)
            assert rendered_batch(catalog, row, 4) == (batch, position)
    alone = {**records[0], "isolated": True}
    rebuilt, position = rendered_batch(catalog, alone, 4)
    assert (
        rebuilt.items == (rebuilt.items[0],)
        and rebuilt.items[0].key == alone["key"]
        and position == 0
    )
    # A mate gone from the catalog: the id no longer matches, nothing to re-render.
    partial = catalog.filter(pc.not_equal(catalog["key"], records[1]["key"]))
    assert rendered_batch(partial, records[0], 4) == (None, 0)
