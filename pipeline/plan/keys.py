"""Item keys (content hashes of the canonical request) and ids derived from them."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import ManifestError, RowProblem
from pipeline.models import model_fingerprint, resolve_model
from pipeline.plan.lora_rows import key_text as lora_key_text
from pipeline.plan.reference_rows import key_text as reference_key_text
from pipeline.schema import (
    FAMILY_PARAM_COLUMNS,
    LORA,
    MEDIA_COLUMNS,
    MEDIA_HASH_SUFFIX,
    REFERENCE_IMAGES,
    RESIZE,
    SEED_SPACE,
)

# v3: rows that set a family parameter (guidance_scale_2, decode_timestep, ...) or give
# media append them (media by content hash, and the resize policy); a row without any keeps
# its v2 canonical form, so existing Wan keys are unchanged.
KEY_VERSION = "promptreel-key-v3"
LEGACY_KEY_VERSION = "promptreel-key-v2"
KEY_LENGTH = 32  # hex chars of sha256: 128 bits


def canonical_requests(table: pa.Table, lane: str | None = None) -> pa.Array:
    """One canonical text per row, built with Arrow kernels (a million rows in ~1 s).

    Fields are joined by U+001F; the two free texts are length-prefixed, so no prompt can
    make two requests read the same. Floats are written by Python's repr (shortest
    round-trip form), never by Arrow's formatter, so keys do not move with pyarrow.
    `lane`: the run's pixel-changing speed lanes (models/lanes.py key_text), on every row.
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
    extras = _extra_texts(table, lane)
    if extras is None:  # no row sets a family parameter: the v2 form, keys unchanged
        return canonical
    # Rows with family parameters: version v3, then name=value per parameter set.
    upgraded = pc.replace_substring(canonical, LEGACY_KEY_VERSION, KEY_VERSION, max_replacements=1)
    with_extras = pc.binary_join_element_wise(upgraded, extras, "\x1f")
    return pc.if_else(pc.equal(extras, ""), canonical, with_extras)


# Appended per row where set: family parameters (sorted by name), then each media input's
# content hash and the resize policy, then the LoRA adapters (content hash and scale of
# each, in order). Never a URL: the same bytes elsewhere are the same request.
_EXTRAS = (
    *((name, name, lambda v: repr(float(v))) for name in FAMILY_PARAM_COLUMNS),
    *((name, name + MEDIA_HASH_SUFFIX, str) for name in MEDIA_COLUMNS),
    (RESIZE, RESIZE, str),
    (LORA, LORA, lora_key_text),
    (REFERENCE_IMAGES, REFERENCE_IMAGES, reference_key_text),
)


def _extra_texts(table: pa.Table, lane: str | None = None) -> pa.Array | None:
    """Per row, "name=value" for each extra it sets (_EXTRAS order, then the run's lane;
    joined by U+001F; "" where none), or None when no row sets any."""
    present = [e for e in _EXTRAS if e[1] in table.column_names]
    present = [e for e in present if table[e[1]].null_count < table.num_rows]
    pieces = []
    for name, column, render in present:
        values = table[column]
        distinct = pc.unique(values).drop_null()
        texts = pa.array([f"{name}={render(v)}" for v in distinct.to_pylist()], pa.string())
        pieces.append(pc.take(texts, pc.index_in(values, value_set=distinct)))
    if lane:
        pieces.append(pa.array([lane] * table.num_rows, pa.string()))
    if not pieces:
        return None
    # (binary_join_element_wise's null_handling="skip" drops all-null rows of chunked
    # arrays in pyarrow here, so join pairwise and coalesce instead.)
    joined = pieces[0]
    for piece in pieces[1:]:
        both = pc.binary_join_element_wise(joined, piece, "\x1f")  # null if either is
        joined = pc.coalesce(both, joined, piece)
    return pc.fill_null(joined, "")


def compute_keys(
    table: pa.Table, lane: str | None = None, chunk_rows: int = 262144
) -> pa.ChunkedArray:
    """Key of each row: sha256 of its canonical request (seed as the generator sees it)."""
    chunks = []
    for start in range(0, table.num_rows, chunk_rows):
        canonical = canonical_requests(table.slice(start, chunk_rows), lane)
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
