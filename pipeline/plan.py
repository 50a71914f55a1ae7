"""Item keys, shape buckets, deterministic batches and the job fingerprint.

Everything here is a pure function of the validated manifest and the settings, so the
same manifest plans the same batches whatever the actor count, order or crashes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import REQUEST_FIELDS, SEED_SPACE, EncodeSettings, RenderSettings
from pipeline.errors import ManifestError
from pipeline.manifest import RowProblem, ValidatedManifest
from pipeline.models import model_fingerprint, resolve_model

KEY_VERSION = "promptreel-key-v1"
KEY_LENGTH = 32  # hex chars of sha256: 128 bits
# Parameters one pipeline call takes for the whole batch; items in a batch share them.
BUCKET_FIELDS = ("model", "height", "width", "num_frames", "num_inference_steps", "guidance_scale")
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


@dataclass(frozen=True)
class Batch:
    """Items rendered by one pipeline call, padded to `size` with copies of the last item."""

    items: tuple[Item, ...]
    size: int

    @property
    def model(self) -> str:
        return self.items[0].model

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(item.key for item in self.items)

    def padded(self) -> tuple[Item, ...]:
        return self.items + (self.items[-1],) * (self.size - len(self.items))


@dataclass(frozen=True)
class Plan:
    rows: pa.Table  # one row per manifest row: validated columns + `key`, `id` filled
    items: pa.Table  # one row per distinct key, sorted by bucket then key
    batch_size: int

    def batches(self, pending_keys: pa.Array | None = None, model: str | None = None):
        """Chunk the pending items of each bucket, in plan order (bucket, key)."""
        items = self.items
        if pending_keys is not None:
            items = items.filter(pc.is_in(items["key"], value_set=pending_keys))
        if model is not None:
            items = items.filter(pc.equal(items["model"], model))
        chunk: list[Item] = []
        bucket = None
        for record in _records(items.select(ITEM_FIELDS)):
            item = Item(**record)
            item_bucket = tuple(record[name] for name in BUCKET_FIELDS)
            if chunk and (item_bucket != bucket or len(chunk) == self.batch_size):
                yield Batch(tuple(chunk), self.batch_size)
                chunk = []
            bucket = item_bucket
            chunk.append(item)
        if chunk:
            yield Batch(tuple(chunk), self.batch_size)


def request_key(fields: list, model_fp: str) -> str:
    canonical = json.dumps([KEY_VERSION, *fields, model_fp], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:KEY_LENGTH]


def _records(table: pa.Table, chunk_rows: int = 65536):
    """Rows as dicts, a chunk at a time, so a million rows never sit in memory as dicts."""
    for chunk in table.to_batches(max_chunksize=chunk_rows):
        yield from chunk.to_pylist()


def compute_keys(table: pa.Table) -> pa.Array:
    """Key of each row: hash of the canonical request as the generator sees it."""
    fingerprints = {
        spec: model_fingerprint(resolve_model(spec))
        for spec in pc.unique(table["model"]).to_pylist()
    }
    keys = []
    for row in _records(table.select(list(REQUEST_FIELDS))):
        fields = [
            row["prompt"],
            row["negative_prompt"],
            row["seed"] % SEED_SPACE,
            row["height"],
            row["width"],
            row["num_frames"],
            float(row["fps"]),
            row["num_inference_steps"],
            float(row["guidance_scale"]),
        ]
        keys.append(request_key(fields, fingerprints[row["model"]]))
    return pa.array(keys, pa.string())


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
    """First row of each key, sorted so that batches form by bucket, then key."""
    indexed = rows.select(list(ITEM_FIELDS)).append_column(
        "_index", pa.array(range(rows.num_rows), pa.int64())
    )
    first = indexed.group_by("key", use_threads=False).aggregate([("_index", "min")])
    items = indexed.take(first["_index_min"]).drop_columns("_index")
    return items.sort_by([(name, "ascending") for name in (*BUCKET_FIELDS, "key")])


def job_fingerprint(render: RenderSettings, encode: EncodeSettings) -> dict:
    """Everything besides the request that decides an item's pixels and bytes."""
    return {
        "model": model_fingerprint(resolve_model(render.model)),
        "render": render.fingerprint_fields(),
        "encode": dataclasses.asdict(encode),
        "key_version": KEY_VERSION,
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
