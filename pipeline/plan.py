"""Item keys, shape buckets, deterministic batches and the job fingerprint.

Everything here is a pure function of the validated manifest and the settings, so the
same manifest plans the same batches whatever the actor count, order or crashes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.composition import BATCHING_VERSION, Composition, batch_id
from pipeline.config import (
    FAMILY_PARAM_COLUMNS,
    REQUEST_FIELDS,
    SEED_SPACE,
    EncodeSettings,
    RenderSettings,
)
from pipeline.errors import ManifestError
from pipeline.manifest import RowProblem, ValidatedManifest
from pipeline.models import model_fingerprint, resolve_model

# v3: rows that set a family parameter (guidance_scale_2, decode_timestep, ...) append
# them; a row without any keeps its v2 canonical form, so existing Wan keys are unchanged.
KEY_VERSION = "promptreel-key-v3"
LEGACY_KEY_VERSION = "promptreel-key-v2"
KEY_LENGTH = 32  # hex chars of sha256: 128 bits
# Parameters one pipeline call takes for the whole batch; items in a batch share them.
BUCKET_FIELDS = ("model", "height", "width", "num_frames", "num_inference_steps", "guidance_scale")
BUCKET_FIELDS += FAMILY_PARAM_COLUMNS
ITEM_FIELDS = ("key", *REQUEST_FIELDS)


@dataclass(frozen=True)
class Item:
    """One distinct render request. `seed` is the user's; the generator uses seed % 2**32."""

    key: str
    prompt: str
    negative_prompt: str
    seed: int
    model: str
    height: int
    width: int
    num_frames: int
    fps: float
    num_inference_steps: int
    guidance_scale: float
    # The family's own parameters (guidance_scale_2, decode_timestep, ...) this row sets,
    # as sorted (name, value) pairs: `__call__` keywords, part of the key.
    params: tuple[tuple[str, float], ...] = ()

    def family_args(self) -> dict:
        return dict(self.params)

    @classmethod
    def from_record(cls, record: dict) -> Item:
        """From a row of ITEM_FIELDS columns: family parameters a row sets become `params`."""
        fields = {name: record[name] for name in ITEM_FIELDS if name not in FAMILY_PARAM_COLUMNS}
        given = [(n, record[n]) for n in FAMILY_PARAM_COLUMNS if record.get(n) is not None]
        return cls(**fields, params=tuple(given))


# How a batch came to run. PLANNED: its planned composition, first time. RETRY: the same
# composition again for items that failed or were lost (their done mates as padding).
# ISOLATED: one item alone, padded with copies of itself (after a RETRY failed too).
PLANNED, RETRY, ISOLATED = "planned", "retry", "isolated"


@dataclass(frozen=True)
class Batch:
    """Items rendered by one pipeline call, padded to `size` with copies of the last item.

    `items` are real items in their planned positions; only the `wanted` ones (all when
    None) are kept and recorded, the others are rendered as padding so that the wanted
    ones get exactly the pixels of their planned batch. `origin`: for an ISOLATED batch,
    the planned batch its item left.
    """

    items: tuple[Item, ...]
    size: int
    wanted: frozenset[str] | None = None
    stage: str = PLANNED
    origin: Batch | None = None

    @property
    def model(self) -> str:
        return self.items[0].model

    @property
    def kept(self) -> tuple[Item, ...]:
        """The items whose outputs are kept, in position order."""
        if self.wanted is None:
            return self.items
        return tuple(item for item in self.items if item.key in self.wanted)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(item.key for item in self.kept)

    def padded(self) -> tuple[Item, ...]:
        return self.items + (self.items[-1],) * (self.size - len(self.items))

    @property
    def planned(self) -> Batch:
        return self.origin or self

    @functools.cached_property
    def batch_id(self) -> str:
        planned = self.planned
        return batch_id(tuple(item.key for item in planned.items), planned.size)

    def position(self, key: str) -> int:
        """Position of `key` in its planned batch."""
        return next(i for i, item in enumerate(self.planned.items) if item.key == key)

    @property
    def isolated(self) -> bool:
        """Rendered outside its planned batch (alone, where the plan had mates)."""
        return self.origin is not None and len(self.origin.items) > 1

    def again(self, keys) -> list[Batch]:
        """The next attempt for `keys` of this batch: the planned composition once more,
        then each item alone (an item whose planned batch is just itself stays there)."""
        if self.stage == PLANNED and len(self.items) > 1:
            return [dataclasses.replace(self, wanted=frozenset(keys), stage=RETRY)]
        if len(self.items) == 1:
            return [self]
        by_key = {item.key: item for item in self.items}
        return [Batch((by_key[k],), self.size, None, ISOLATED, self.planned) for k in keys]


@dataclass(frozen=True)
class Plan:
    rows: pa.Table  # one row per manifest row: validated columns + `key`, `id` filled
    items: pa.Table  # one row per distinct key (+ `first_row`, and `priority` if given)
    batch_size: int

    @functools.cached_property
    def composition(self) -> Composition:
        """The planned batches, over every item (see pipeline/composition.py)."""
        return Composition(self.items, BUCKET_FIELDS, self.batch_size)

    def _wanted(self, pending_keys: pa.Array | None, model: str | None) -> np.ndarray:
        wanted = np.ones(self.items.num_rows, bool)
        if pending_keys is not None and len(pending_keys) < self.items.num_rows:
            wanted &= _mask(pc.is_in(self.items["key"], value_set=pending_keys))
        if model is not None:
            wanted &= _mask(pc.equal(self.items["model"], model))
        return wanted

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
        for bucket in sorted(counts.to_pylist(), key=lambda b: [b[f] for f in BUCKET_FIELDS]):
            items = bucket.pop("_batch_count")
            batches = bucket.pop("_batch_count_distinct", -(-items // self.batch_size))
            buckets.append({**bucket, "items": items, "batches": batches})
        return buckets

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


def canonical_requests(table: pa.Table) -> pa.Array:
    """One canonical text per row, built with Arrow kernels (a million rows in ~1 s).

    Fields are joined by U+001F; the two free texts are length-prefixed, so no prompt can
    make two requests read the same. Floats are written by Python's repr (shortest
    round-trip form), never by Arrow's formatter, so keys do not move with pyarrow.
    """

    def mapped(column: str, render) -> pa.Array:
        values = table[column]
        distinct = pc.unique(values)
        texts = pa.array([render(v) for v in distinct.to_pylist()], pa.string())
        return pc.take(texts, pc.index_in(values, value_set=distinct))

    def text(column: str) -> pa.Array:
        values = table[column]
        return pc.binary_join_element_wise(
            pc.cast(pc.utf8_length(values), pa.string()), values, ":"
        )

    def integer(column: str) -> pa.Array:
        return pc.cast(table[column], pa.string())

    seed32 = pc.bit_wise_and(
        pc.cast(table["seed"], pa.uint64()), pa.scalar(SEED_SPACE - 1, pa.uint64())
    )
    parts = [
        pa.scalar(LEGACY_KEY_VERSION),
        text("prompt"),
        text("negative_prompt"),
        pc.cast(seed32, pa.string()),
        integer("height"),
        integer("width"),
        integer("num_frames"),
        mapped("fps", lambda v: repr(float(v))),
        integer("num_inference_steps"),
        mapped("guidance_scale", lambda v: repr(float(v))),
        mapped("model", lambda spec: model_fingerprint(resolve_model(spec))),
    ]
    canonical = pc.binary_join_element_wise(*parts, "\x1f")
    extras = _family_param_texts(table)
    if extras is None:  # no row sets a family parameter: the v2 form, keys unchanged
        return canonical
    # Rows with family parameters: version v3, then name=value per parameter set.
    upgraded = pc.replace_substring(canonical, LEGACY_KEY_VERSION, KEY_VERSION, max_replacements=1)
    with_extras = pc.binary_join_element_wise(upgraded, extras, "\x1f")
    return pc.if_else(pc.equal(extras, ""), canonical, with_extras)


def _family_param_texts(table: pa.Table) -> pa.Array | None:
    """Per row, "name=value" for each family parameter set (sorted by name, joined by
    U+001F; "" where none), or None when no row sets any."""
    present = [n for n in FAMILY_PARAM_COLUMNS if n in table.column_names]
    present = [n for n in present if table[n].null_count < table.num_rows]
    if not present:
        return None
    pieces = []
    for name in present:
        values = table[name]
        distinct = pc.unique(values).drop_null()
        texts = pa.array([f"{name}={float(v)!r}" for v in distinct.to_pylist()], pa.string())
        pieces.append(pc.take(texts, pc.index_in(values, value_set=distinct)))
    # (binary_join_element_wise's null_handling="skip" drops all-null rows of chunked
    # arrays in pyarrow here, so join pairwise and coalesce instead.)
    joined = pieces[0]
    for piece in pieces[1:]:
        both = pc.binary_join_element_wise(joined, piece, "\x1f")  # null if either is
        joined = pc.coalesce(both, joined, piece)
    return pc.fill_null(joined, "")


def compute_keys(table: pa.Table, chunk_rows: int = 262144) -> pa.ChunkedArray:
    """Key of each row: sha256 of its canonical request (seed as the generator sees it)."""
    chunks = []
    for start in range(0, table.num_rows, chunk_rows):
        canonical = canonical_requests(table.slice(start, chunk_rows))
        encoded = pc.cast(canonical, pa.binary()).to_pylist()
        digests = [hashlib.sha256(data).hexdigest()[:KEY_LENGTH] for data in encoded]
        chunks.append(pa.array(digests, pa.string()))
    return pa.chunked_array(chunks, pa.string())


def derive_ids(given: list[str | None], keys: list[str]) -> list[str]:
    """Fill missing ids from the key; the n-th repeat of a request gets suffix -n."""
    taken = {i for i in given if i}
    seen: dict[str, int] = {}
    ids = []
    problems = []
    for row, (given_id, key) in enumerate(zip(given, keys)):
        if given_id:
            ids.append(given_id)
            continue
        repeat = seen.get(key, 0)
        seen[key] = repeat + 1
        derived = key[:16] if repeat == 0 else f"{key[:16]}-{repeat}"
        if derived in taken:
            problems.append(
                RowProblem(row, None, "id", f"derived id {derived!r} collides with a given id")
            )
        taken.add(derived)
        ids.append(derived)
    if problems:
        raise ManifestError(problems)
    return ids


def make_plan(manifest: ValidatedManifest, batch_size: int) -> Plan:
    table = manifest.table
    keys = compute_keys(table)
    ids = table["id"]
    if ids.null_count:  # derive the missing ones; with every id given there is nothing to do
        ids = pa.array(derive_ids(ids.to_pylist(), keys.to_pylist()), pa.string())
    rows = table.set_column(table.schema.get_field_index("id"), "id", ids)
    rows = rows.append_column("key", keys)
    items = _distinct_items(rows)
    return Plan(rows=rows, items=items, batch_size=batch_size)


def _distinct_items(rows: pa.Table) -> pa.Table:
    """First row of each key, with its index (`first_row`: coverage ranks use it) and the
    highest `priority` among the rows asking for it, when the manifest has that column."""
    extra = ["priority"] if "priority" in rows.column_names else []
    indexed = rows.select([*ITEM_FIELDS, *extra]).append_column(
        "_index", pa.array(np.arange(rows.num_rows, dtype=np.int64))
    )
    aggregates = [("_index", "min")] + [(name, "max") for name in extra]
    first = indexed.group_by("key", use_threads=False).aggregate(aggregates)
    items = indexed.select(list(ITEM_FIELDS)).take(first["_index_min"])
    items = items.append_column("first_row", first["_index_min"])
    for name in extra:
        items = items.append_column(name, first[f"{name}_max"])
    return items


def job_fingerprint(render: RenderSettings, encode: EncodeSettings) -> dict:
    """Everything besides the request that decides an item's pixels and bytes."""
    return {
        "model": model_fingerprint(resolve_model(render.model)),
        "render": render.fingerprint_fields(),
        "encode": dataclasses.asdict(encode),
        "key_version": KEY_VERSION,
        "batching": BATCHING_VERSION,
    }


def fingerprint_differences(recorded: dict, current: dict, prefix: str = "") -> list[str]:
    """Human-readable list of settings that differ between two job fingerprints."""
    differences = []
    for name in sorted(set(recorded) | set(current)):
        old, new = recorded.get(name), current.get(name)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += fingerprint_differences(old, new, f"{prefix}{name}.")
        elif old != new:
            differences.append(f"{prefix}{name}: run dir has {old!r}, this command has {new!r}")
    return differences
