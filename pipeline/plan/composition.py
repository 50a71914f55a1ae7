"""Planned batches: which items share a pipeline call, in which position, and in which
order the batches are dispatched.

On some CPU kernels an item's pixels depend on its batch-mates and its position (torch
runs the last `numel % 32` elements of some ops through a scalar loop: a (2, 24) time
embedding differs by one ulp between two identical samples). So the composition is a
pure function of the plan's items, ALL of them, done or not: a resumed run dispatches the
same planned batches as a clean run, with finished mates rendered again as padding (their
outputs discarded). Actor count, order, crashes and what is already done never change it.

Composition, per shape bucket (buckets in BUCKET_FIELDS order): items sorted by variant
(plan/variants.py; 0 without variants), then rank (the n-th distinct request of its
prompt, in manifest order, has rank n), then key, chunked into batches of `batch_size`; a
bucket's short last batch is padded with copies of its last item. Dispatch order (free,
it changes no pixel): highest `priority` first, then lowest variant, then lowest rank,
then bucket, then position, so a stopped run has every row's variant 0 before any
variant 1, and every prompt at least once before any prompt has a second seed.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BATCHING_VERSION = "promptreel-batches-v1"  # in the job fingerprint: a change re-plans pixels
BATCH_ID_LENGTH = 16  # hex chars


def batch_id(keys, size: int) -> str:
    """Id of a planned batch: a hash of its size and its items' keys in position order."""
    text = f"{BATCHING_VERSION}\x1f{size}\x1f" + "\x1f".join(keys)
    return hashlib.sha256(text.encode()).hexdigest()[:BATCH_ID_LENGTH]


def _codes(column) -> np.ndarray:
    """Integer codes whose order is the order of the column's values."""
    distinct = pc.unique(column)
    distinct = distinct.take(pc.sort_indices(distinct))
    codes = pc.index_in(column, value_set=distinct)
    return np.asarray(codes.to_numpy(zero_copy_only=False), np.int64)


def _key_order(keys) -> np.ndarray:
    """Sort rank of each key (keys are distinct)."""
    ranks = np.empty(len(keys), np.int64)
    ranks[np.asarray(pc.sort_indices(keys))] = np.arange(len(keys))
    return ranks


def _combined(codes: list[np.ndarray]) -> np.ndarray:
    """One code per distinct tuple of codes, in the tuples' lexicographic order."""
    combined = np.zeros(len(codes[0]) if codes else 0, np.int64)
    for column in codes:
        radix = int(column.max(initial=0)) + 1
        if int(combined.max(initial=0)) * radix + radix >= 2**62:  # never for real buckets
            combined = np.unique(combined, return_inverse=True)[1].astype(np.int64)
        combined = combined * radix + column
    return combined


def prompt_ranks(prompts, first_rows, variants=None) -> np.ndarray:
    """Rank of each item among the items of its prompt, by variant then first manifest row
    (every variant 0 of a prompt ranks before its variants 1)."""
    prompt = pc.dictionary_encode(prompts).combine_chunks().indices
    prompt = np.asarray(prompt.to_numpy(zero_copy_only=False), np.int64)
    first = np.asarray(first_rows, np.int64)
    variant = np.zeros(len(first), np.int64) if variants is None else np.asarray(variants)
    order = np.lexsort((first, variant, prompt))
    grouped = prompt[order]
    starts = np.flatnonzero(np.concatenate([[True], grouped[1:] != grouped[:-1]]))
    position = np.arange(len(order), dtype=np.int64)
    start_of = np.repeat(starts, np.diff(np.concatenate([starts, [len(order)]])))
    ranks = np.empty(len(order), np.int64)
    ranks[order] = position - start_of
    return ranks


class Composition:
    """The planned batches of a plan's items (vectorised; a million items in seconds).

    `order`: item rows (indices into `items`) in composition order; batch b holds
    order[starts[b]:starts[b + 1]]. `dispatch`: batch numbers in dispatch order.
    """

    def __init__(self, items: pa.Table, bucket_fields: tuple[str, ...], batch_size: int):
        self.items = items
        self.batch_size = batch_size
        n = items.num_rows
        variants = _ints(items["variant"]) if "variant" in items.column_names else np.zeros(n)
        variants = variants.astype(np.int64)
        ranks = prompt_ranks(items["prompt"], items["first_row"], variants)
        buckets = [_codes(items[name]) for name in bucket_fields]
        # One integer per sort level (np.lexsort sorts by the last key first): bucket,
        # variant, then rank * n + key rank (both < n, so it fits an int64 for any real plan).
        within = ranks * max(n, 1) + _key_order(items["key"])
        bucket_code = _combined(buckets)
        levels = (within, variants, bucket_code)
        self.order = np.lexsort(levels) if n else np.zeros(0, np.int64)
        ordered = bucket_code[self.order]
        new_bucket = np.concatenate([[True], ordered[1:] != ordered[:-1]])[:n]
        bucket = np.cumsum(new_bucket) - 1  # bucket number, per composition position
        bucket_start = np.maximum.accumulate(np.where(new_bucket, np.arange(n), 0))
        self.position = np.arange(n) - bucket_start  # in the bucket, composition order
        first_of_batch = (self.position % batch_size) == 0
        self.starts = np.append(np.flatnonzero(first_of_batch), n).astype(np.int64)
        batches = len(self.starts) - 1
        heads = self.order[self.starts[:-1]]
        self.batch_bucket = bucket[self.starts[:-1]]
        self.batch_rank = ranks[heads]  # items are sorted by rank: the head's is the lowest
        self.batch_variant = variants[heads]  # ... and by variant first: the lowest too
        self.batch_priority = self._batch_max(_priorities(items))
        self.dispatch = np.lexsort(
            (
                np.arange(batches),
                self.batch_bucket,
                self.batch_rank,
                self.batch_variant,
                -self.batch_priority,
            )
        )
        self.ranks = ranks

    def _batch_max(self, values: np.ndarray) -> np.ndarray:
        if not len(self.order):
            return np.zeros(0)
        return np.maximum.reduceat(values[self.order], self.starts[:-1])

    def batch_of_item(self) -> tuple[np.ndarray, np.ndarray]:
        """(planned batch number, position in it) of each item row."""
        n = self.items.num_rows
        number = np.repeat(np.arange(len(self.starts) - 1), np.diff(self.starts))
        batch, pos = np.empty(n, np.int64), np.empty(n, np.int64)
        batch[self.order] = number
        pos[self.order] = self.position % self.batch_size
        return batch, pos

    def batches_with(self, wanted: np.ndarray) -> np.ndarray:
        """Batch numbers, in dispatch order, that hold at least one wanted item."""
        if not len(self.order):
            return np.zeros(0, np.int64)
        any_wanted = np.maximum.reduceat(wanted[self.order].astype(np.int8), self.starts[:-1])
        return self.dispatch[any_wanted[self.dispatch] > 0]

    def batch_ids(self) -> list[str]:
        keys = self.items["key"].take(pa.array(self.order)).to_pylist()
        return [
            batch_id(keys[self.starts[b] : self.starts[b + 1]], self.batch_size)
            for b in range(len(self.starts) - 1)
        ]


def _ints(column) -> np.ndarray:
    return np.asarray(pc.fill_null(column, 0).to_numpy(zero_copy_only=False), np.int64)


def _priorities(items: pa.Table) -> np.ndarray:
    if "priority" not in items.column_names:
        return np.zeros(items.num_rows)
    values = pc.fill_null(items["priority"].cast(pa.float64()), 0.0)
    return np.asarray(values.to_numpy(zero_copy_only=False), float)


def with_planned_batches(catalog: pa.Table, items: pa.Table, comp: Composition) -> pa.Table:
    """Catalog rows not rendered yet get their planned batch (id and position); rendered
    rows keep the batch the ledger says they were rendered in."""
    missing = pc.is_null(catalog["batch_id"])
    if not pc.any(missing).as_py():
        return catalog
    batch, pos = comp.batch_of_item()
    index = pc.index_in(catalog["key"], value_set=items["key"])
    planned_id = pa.array(comp.batch_ids(), pa.string()).take(pa.array(batch)).take(index)
    planned_pos = pa.array(pos, pa.int32()).take(index)
    for name, planned in (("batch_id", planned_id), ("batch_pos", planned_pos)):
        column = pc.coalesce(catalog[name], planned)
        catalog = catalog.set_column(catalog.schema.get_field_index(name), name, column)
    return catalog
