"""The plan: validated rows with keys and ids, distinct items, planned batches, and what
is still pending.

Everything here is a pure function of the validated manifest and the settings, so the
same manifest plans the same batches whatever the actor count, order or crashes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.models import resolve_model
from pipeline.plan.batches import Batch, Item
from pipeline.plan.composition import Composition, with_planned_batches
from pipeline.plan.keys import compute_keys
from pipeline.plan.manifest import ValidatedManifest
from pipeline.plan.variants import SOURCE_ID, VARIANT, expand, ids_and_sources
from pipeline.schema import BUCKET_FIELDS, CALL_FPS, ITEM_FIELDS


@dataclass(frozen=True)
class Plan:
    rows: pa.Table  # one row per manifest row: validated columns + `key`, `id` filled
    items: pa.Table  # one row per distinct key (+ `first_row`, and `priority` if given)
    batch_size: int

    @functools.cached_property
    def composition(self) -> Composition:
        """The planned batches, over every item (see pipeline/plan/composition.py)."""
        return Composition(self.items, BUCKET_FIELDS, self.batch_size)

    def _wanted(self, pending_keys: pa.Array | None, model: str | None) -> np.ndarray:
        wanted = np.ones(self.items.num_rows, bool)
        if pending_keys is not None and len(pending_keys) < self.items.num_rows:
            wanted &= _mask(pc.is_in(self.items["key"], value_set=pending_keys))
        if model is not None:
            wanted &= _mask(pc.equal(self.items["model"], model))
        return wanted

    def with_planned_batches(self, catalog: pa.Table) -> pa.Table:
        """Catalog rows not rendered yet get their planned batch (id and position); the
        composition is computed only when some row needs it."""
        if not pc.any(pc.is_null(catalog["batch_id"])).as_py():
            return catalog
        return with_planned_batches(catalog, self.items, self.composition)

    def pending_buckets(self, pending_keys: pa.Array) -> list[dict]:
        """Per shape bucket: pending items and the planned batches that hold them."""
        wanted = self._wanted(pending_keys, None)
        if not wanted.any():
            return []
        table = self.items.select(list(BUCKET_FIELDS))
        aggregates = [("_batch", "count"), ("_batch", "count_distinct")]
        if wanted.all():  # every planned batch runs: no composition needed to count them
            table, aggregates = table.append_column("_batch", self.items["key"]), aggregates[:1]
        else:
            batch, _ = self.composition.batch_of_item()
            table = table.append_column("_batch", pa.array(batch)).filter(pa.array(wanted))
        counts = table.group_by(list(BUCKET_FIELDS)).aggregate(aggregates)
        buckets = []
        for bucket in sorted(counts.to_pylist(), key=_bucket_order):
            items = bucket.pop("_batch_count")
            batches = bucket.pop("_batch_count_distinct", -(-items // self.batch_size))
            buckets.append({**bucket, "items": items, "batches": batches})
        return buckets

    def batch_count(self, pending_keys: pa.Array | None = None, model: str | None = None) -> int:
        """How many planned batches hold a pending item (of `model`)."""
        return len(self.composition.batches_with(self._wanted(pending_keys, model)))

    def pending_models(self, pending_keys: pa.Array, first: str) -> list[str]:
        """The models with pending items, in render order: `first` (the run's --model)
        first, then as they sort."""
        pending = self.items.filter(pc.is_in(self.items["key"], value_set=pending_keys))
        return sorted(pc.unique(pending["model"]).to_pylist(), key=lambda m: (m != first, m))

    def batches(self, pending_keys: pa.Array | None = None, model: str | None = None):
        """The planned batches holding a pending item (of `model`), in dispatch order.

        Each is the whole planned batch: its done items ride along as padding (`wanted`
        names the pending ones), so a resumed run renders exactly what a clean run does.
        """
        comp = self.composition
        wanted = self._wanted(pending_keys, model)
        numbers = comp.batches_with(wanted)
        if not len(numbers):
            return
        lengths = (comp.starts[numbers + 1] - comp.starts[numbers]).tolist()
        rows = np.concatenate([comp.order[comp.starts[b] : comp.starts[b + 1]] for b in numbers])
        records = _records(self.items.select(list(ITEM_FIELDS)).take(pa.array(rows)))
        cursor = 0
        for length in lengths:
            members = tuple(Item.from_record(next(records)) for _ in range(length))
            keep = wanted[rows[cursor : cursor + length]]
            cursor += length
            kept = None if keep.all() else frozenset(i.key for i, k in zip(members, keep) if k)
            yield Batch(members, self.batch_size, kept)


def _mask(array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _records(table: pa.Table, chunk_rows: int = 65536):
    """Rows as dicts, a chunk at a time, so a million rows never sit in memory as dicts."""
    for chunk in table.to_batches(max_chunksize=chunk_rows):
        yield from chunk.to_pylist()


def make_plan(
    manifest: ValidatedManifest, batch_size: int, variants: int = 1, lane: str | None = None
) -> Plan:
    """`variants`: renders per row where its `variants` cell is blank (plan/variants.py);
    `lane`: the run's pixel-changing speed lanes, in every key (models/lanes.py key_text)."""
    table = expand(manifest.table, variants)
    keys = compute_keys(table, lane)
    ids, sources = ids_and_sources(table, keys)
    rows = table.set_column(table.schema.get_field_index("id"), "id", ids)
    rows = rows.append_column(SOURCE_ID, sources).append_column("key", keys)
    items = with_call_fps(_distinct_items(rows))
    return Plan(rows=rows, items=items, batch_size=batch_size)


def with_call_fps(items: pa.Table) -> pa.Table:
    """The CALL_FPS bucket field: an item's fps where its family's call takes it (a batch
    then shares it), null where fps only labels the clip."""
    models = pc.unique(items["model"]).to_pylist()
    taking = pa.array([m for m in models if resolve_model(m).family.call_fps], pa.string())
    fps = pc.cast(items["fps"], pa.float64())
    mask = pc.is_in(items["model"], value_set=taking)
    return items.append_column(CALL_FPS, pc.if_else(mask, fps, pa.scalar(None, pa.float64())))


def _distinct_items(rows: pa.Table) -> pa.Table:
    """First row of each key, with its index (`first_row`: coverage ranks use it) and the
    highest `priority` among the rows asking for it, when the manifest has that column."""
    extra = ["priority"] if "priority" in rows.column_names else []
    indexed = rows.select([*ITEM_FIELDS, VARIANT, *extra]).append_column(
        "_index", pa.array(np.arange(rows.num_rows, dtype=np.int64))
    )
    aggregates = [("_index", "min"), (VARIANT, "min")] + [(name, "max") for name in extra]
    first = indexed.group_by("key", use_threads=False).aggregate(aggregates)
    items = indexed.select(list(ITEM_FIELDS)).take(first["_index_min"])
    items = items.append_column("first_row", first["_index_min"])
    # an item that is one row's variant 0 and another's variant 1 ranks as a variant 0
    items = items.append_column(VARIANT, first[f"{VARIANT}_min"])
    for name in extra:
        items = items.append_column(name, first[f"{name}_max"])
    return items


def pending_keys(plan: Plan, finished: pa.Table, retry_failed: bool) -> pa.Array:
    """Plan keys with no final result in `finished` (the ledger) yet, and failed ones with
    --retry-failed: the resume rule."""
    done = finished if not retry_failed else finished.filter(pc.equal(finished["status"], "ok"))
    keep = pc.invert(pc.is_in(plan.items["key"], value_set=done["key"]))
    return plan.items["key"].filter(keep)


def _bucket_order(bucket: dict) -> list:
    """Buckets by their fields in BUCKET_FIELDS order; a null (no family parameter, no
    adapter) after every value, never compared with one."""
    return [(bucket[f] is None, "" if bucket[f] is None else bucket[f]) for f in BUCKET_FIELDS]
