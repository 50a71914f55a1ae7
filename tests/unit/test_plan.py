"""Keys, ids, buckets and batches: pure functions of the manifest (no Ray)."""

from __future__ import annotations

import pyarrow as pa

from pipeline.config import EncodeSettings, RenderSettings
from pipeline.plan.batches import Batch, Item
from pipeline.plan.manifest import validate
from pipeline.plan.planner import make_plan
from pipeline.rundir.jobjson import fingerprint_differences, job_fingerprint


def _plan(rows, batch_size=4):
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
    return make_plan(validate(table), batch_size)


def test_key_ignores_row_order_id_and_passthrough():
    a = _plan([{"id": "a", "prompt": "p", "seed": 1, "extra": 1}, {"prompt": "q", "seed": 2}])
    b = _plan([{"prompt": "q", "seed": 2}, {"id": "zz", "prompt": "p", "seed": 1, "extra": 9}])
    assert a.rows["key"][0] == b.rows["key"][1]
    assert a.rows["key"][1] == b.rows["key"][0]


def test_key_changes_with_every_request_field():
    base = {"prompt": "p", "seed": 1}
    variants = [
        {},
        {"prompt": "p "},
        {"seed": 2},
        {"negative_prompt": "blur"},
        {"height": 80},
        {"width": 80},
        {"num_frames": 13},
        {"fps": 12},
        {"num_inference_steps": 3},
        {"guidance_scale": 4.0},
    ]
    keys = [_plan([{**base, **v}]).rows["key"][0].as_py() for v in variants]
    assert len(set(keys)) == len(variants)


def test_seeds_equal_modulo_2_32_share_a_key_and_render_once():
    plan = _plan([{"prompt": "p", "seed": 12345}, {"prompt": "p", "seed": 12345 + 7 * 2**32}])
    assert plan.rows["key"][0] == plan.rows["key"][1]
    assert plan.items.num_rows == 1
    assert plan.rows["seed"].to_pylist() == [12345, 12345 + 7 * 2**32]  # the user's seeds kept


def test_derived_ids_are_stable_and_unique_for_repeats():
    rows = [
        {"prompt": "p", "seed": 1},
        {"prompt": "p", "seed": 1},
        {"id": "mine", "prompt": "q", "seed": 1},
    ]
    first = _plan(rows).rows["id"].to_pylist()
    assert first == _plan(rows).rows["id"].to_pylist()
    assert first[0] != first[1] and first[1].startswith(first[0]) and first[1].endswith("-1")
    assert first[2] == "mine"


def test_batches_group_by_shape_sort_by_key_and_pad():
    rows = [{"prompt": f"s{i}", "seed": i} for i in range(6)]
    rows += [{"prompt": f"w{i}", "seed": i, "width": 96} for i in range(3)]
    plan = _plan(rows)
    batches = list(plan.batches())
    assert [len(b.items) for b in batches] == [4, 2, 3] or [len(b.items) for b in batches] == [
        3,
        4,
        2,
    ]
    for batch in batches:
        assert len({(i.width, i.height, i.num_frames) for i in batch.items}) == 1
        assert list(batch.keys) == sorted(batch.keys)
        assert len(batch.padded()) == 4 and batch.padded()[-1] == batch.items[-1]
    assert [b.keys for b in batches] == [b.keys for b in _plan(list(reversed(rows))).batches()]


def test_pending_subset_keeps_plan_order():
    plan = _plan([{"prompt": f"s{i}", "seed": i} for i in range(10)])
    pending = plan.items["key"].take([1, 3, 5, 7, 9])
    keys = [k for b in plan.batches(pending) for k in b.keys]
    assert keys == sorted(pending.to_pylist())


def test_fingerprint_names_what_differs():
    a = job_fingerprint(RenderSettings(), EncodeSettings())
    b = job_fingerprint(RenderSettings(batch_size=2, threads=1), EncodeSettings(format="webm"))
    differences = "\n".join(fingerprint_differences(a, b))
    assert "render.batch_size: run dir has 4, this command has 2" in differences
    assert "render.threads" in differences and "encode.format" in differences
    assert fingerprint_differences(a, job_fingerprint(RenderSettings(), EncodeSettings())) == []
    # Not pixel settings: the embedding cache changes nothing recorded.
    assert (
        fingerprint_differences(
            a, job_fingerprint(RenderSettings(embedding_cache=0), EncodeSettings())
        )
        == []
    )


def test_batch_padding_uses_copies_of_the_last_item():
    item = Item("k", "p", "", 1, "tiny", 64, 64, 9, 8.0, 4, 5.0)
    assert Batch((item,), 3).padded() == (item, item, item)
