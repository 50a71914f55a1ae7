"""The `reference_images` cells of a manifest (VACE): a list of images per row, checked
before any GPU time like `image` cells.

A cell is one location, a list of locations (Parquet/JSONL list), or the same list as JSON
text (CSV). Each is an image (pipeline/media/probe.py, the same hash cache), resolved
against the manifest's folder. The validated cell is canonical JSON,
`[{"uri", "sha256"}, ...]` in the order given: the key hashes the contents in order (never a
URL), the catalog records it. The pipeline resizes reference images itself, so actors pass
them as load_image gives them, unfitted.
"""

from __future__ import annotations

import json

import pyarrow as pa

from pipeline.plan.list_cells import list_cell
from pipeline.schema import REFERENCE_IMAGES

MAX_REFERENCES = 8
EXPECTED = "a path or URL of an image, or a list of them"


def parse_references(value) -> list[str] | None:
    """A cell -> its locations (None when blank); ValueError saying what was expected."""
    value = list_cell(value, EXPECTED)
    if value is None:
        return None
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{EXPECTED}; got {json.dumps(value, default=str)[:80]}")
    if not value or len(value) > MAX_REFERENCES:
        raise ValueError(f"1 to {MAX_REFERENCES} reference images, got {len(value)}")
    return [v.strip() for v in value]


def reference_column(table: pa.Table, family_of, resolved, problems, inspect) -> pa.Array:
    """The validated column (canonical JSON text, null without references). `inspect(url)`
    -> the image facts (media_rows' cells: sha256 or a problem)."""
    n = table.num_rows
    if REFERENCE_IMAGES not in table.column_names:
        return pa.nulls(n, pa.string())
    values: list[str | None] = [None] * n
    for row, cell in enumerate(table[REFERENCE_IMAGES].to_pylist()):
        try:
            locations = parse_references(cell)
        except ValueError as exc:
            problems.extend([row], REFERENCE_IMAGES, [str(exc)])
            continue
        if locations is None or not resolved[row]:
            continue
        family = family_of[row]
        if REFERENCE_IMAGES not in family.media_inputs:
            takes = ", ".join(family.media_inputs) or "none"
            message = f"{family.name} models do not take reference_images (their media: {takes})"
            problems.extend([row], REFERENCE_IMAGES, [message])
            continue
        facts = [inspect(location) for location in locations]
        bad = next((f for f in facts if f.problem), None)
        if bad is not None:
            problems.extend([row], REFERENCE_IMAGES, [bad.problem])
            continue
        entries = [{"uri": f.uri, "sha256": f.sha256} for f in facts]
        values[row] = json.dumps(entries, separators=(",", ":"))
    return pa.array(values, pa.string())


def key_text(canonical: str) -> str:
    """What the key hashes: each reference image's content, in order."""
    return ",".join(entry["sha256"] for entry in json.loads(canonical))
