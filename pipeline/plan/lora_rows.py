"""The `lora` cells of a manifest (and `--lora` for rows without one), checked before any
GPU time.

A value is one adapter's location (a local path or any fsspec URL of a .safetensors file,
or a hub repo's file, pinned to a commit like models: pipeline/models/hub_files.py; scale
1.0), or a list of `{"uri": ..., "scale": ...}` objects: a Parquet/JSONL list of structs,
or the same list as JSON text (CSV cells, the flag). `[]` means no adapter, even with
`--lora`. Per distinct location: it exists, is within the size limit, is safetensors,
and fits the row's model (pipeline/models/lora_fit.py); its content hash goes in the row.
The validated cell is canonical JSON, `[{"uri", "scale", "sha256"}, ...]` in the order
given: the key hashes each adapter's content and scale (never its URL), batches group by
it, and the catalog records it. Files are read one at a time, and again on a resume (the
fit check needs the tensors; adapters are few).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass

import pyarrow as pa

from pipeline.errors import ConfigError
from pipeline.media.source import MediaError, MediaLimits, read_media, sha256_hex
from pipeline.models import resolve_model
from pipeline.models.hub_files import parse_hub_file, pin_hub_file, readable_location
from pipeline.models.lora_fit import adapter_tensors, fit_problem
from pipeline.plan.list_cells import list_cell
from pipeline.plan.media_rows import resolve_location
from pipeline.schema import LORA

MAX_ADAPTERS = 8  # per row: what one set_adapters call combines
LORA_MAX_BYTES = 4 * 2**30  # per adapter file (a 14B model's rank-128 LoRA is ~1.2 GB)
EXPECTED = 'a path or URL of a .safetensors file, or a list of {"uri": ..., "scale": ...}'


EXPERTS = ("transformer", "transformer_2")  # which transformer an adapter loads into


@dataclass(frozen=True)
class AdapterSpec:
    uri: str
    scale: float = 1.0
    expert: str = EXPERTS[0]  # transformer_2: Wan 2.2 A14B's low-noise expert


def parse_lora(value) -> tuple[AdapterSpec, ...] | None:
    """A cell or the flag -> its adapters; None when none is given (blank or null), ()
    for an explicit empty list. ValueError saying what was expected."""
    value = list_cell(value, EXPECTED)
    if value is None:
        return None
    adapters = tuple(_adapter(entry) for entry in value)
    if len(adapters) > MAX_ADAPTERS:
        raise ValueError(f"at most {MAX_ADAPTERS} adapters per row, got {len(adapters)}")
    uris = [(a.uri, a.expert) for a in adapters]
    if len(set(uris)) < len(uris):
        raise ValueError("the same adapter is listed twice: give it once, with its scale")
    return adapters


def _adapter(entry) -> AdapterSpec:
    if isinstance(entry, str):
        entry = {"uri": entry}
    uri = entry.get("uri") if isinstance(entry, dict) else None
    if not isinstance(uri, str) or not uri.strip() or set(entry) - {"uri", "scale", "expert"}:
        raise ValueError(f"{EXPECTED}; got {json.dumps(entry, default=str)[:80]}")
    expert = entry.get("expert") or EXPERTS[0]
    if expert not in EXPERTS:
        raise ValueError(f"an adapter's expert is one of {', '.join(EXPERTS)}, got {expert!r}")
    scale = entry.get("scale")
    scale = 1.0 if scale is None else scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"an adapter's scale must be a finite number, got {scale!r}")
    return AdapterSpec(uri.strip(), float(scale), expert)


def lora_limits(limits: MediaLimits) -> MediaLimits:
    """The media limits for adapter files: theirs but the size (adapters are larger)."""
    return dataclasses.replace(limits, max_bytes=LORA_MAX_BYTES)


def key_text(canonical: str) -> str:
    """What the key hashes of a validated cell: each adapter's content and scale (and the
    second expert where it loads there), in order."""
    return ",".join(
        f"{a['sha256']}*{float(a['scale'])!r}" + (f"@{a['expert']}" if "expert" in a else "")
        for a in json.loads(canonical)
    )


def lora_column(table: pa.Table, models: pa.Array, resolved, problems, options) -> pa.Array:
    """The validated `lora` column (canonical JSON text, null without adapters)."""
    n = table.num_rows
    if LORA not in table.column_names and not options.lora:
        return pa.nulls(n, pa.string())
    cells = table[LORA].to_pylist() if LORA in table.column_names else [None] * n
    default = parse_lora(options.lora) if options.lora else None
    specs = models.to_pylist()
    wanted: dict[int, tuple[AdapterSpec, ...]] = {}
    for row, cell in enumerate(cells):
        try:
            adapters = parse_lora(cell)
        except ValueError as exc:
            problems.extend([row], LORA, [str(exc)])
            continue
        adapters = default if adapters is None else adapters
        if adapters and resolved[row]:
            try:
                wanted[row] = tuple(
                    dataclasses.replace(a, uri=_locate(a.uri, options.base)) for a in adapters
                )
            except ConfigError as exc:
                problems.extend([row], LORA, [str(exc)])
    facts = _inspect_all(wanted, specs, options)
    values: list[str | None] = [None] * n
    for row, adapters in wanted.items():
        found = [facts[(a.uri, specs[row], a.expert)] for a in adapters]
        bad = next((problem for _, problem in found if problem), None)
        if bad is not None:
            problems.extend([row], LORA, [bad])
            continue
        found = [sha for sha, _ in found]
        if len({(sha, a.expert) for sha, a in zip(found, adapters)}) < len(found):
            problems.extend([row], LORA, ["two of its adapters are the same file content"])
            continue
        entries = [_entry(a, sha) for a, sha in zip(adapters, found)]
        values[row] = json.dumps(entries, separators=(",", ":"))
    return pa.array(values, pa.string())


def _entry(adapter: AdapterSpec, sha: str) -> dict:
    """The canonical form; `expert` only where it is not the default (so keys and catalogs
    of adapters without one stay as they were)."""
    entry = {"uri": adapter.uri, "scale": adapter.scale, "sha256": sha}
    if adapter.expert != EXPERTS[0]:
        entry["expert"] = adapter.expert
    return entry


def _locate(uri: str, base: str) -> str:
    """A path (relative ones against the manifest's folder), a URL, or a hub repo's file
    pinned to a commit (`org/name[@rev][:file]`, when no such local file exists)."""
    local = resolve_location(uri, base)
    hub = None if os.path.exists(local) else parse_hub_file(uri)
    return pin_hub_file(hub).pinned if hub is not None else local


def _inspect_all(wanted: dict, specs: list, options) -> dict:
    """(location, model spec) -> (the adapter's sha256, "") or (None, why it cannot be
    used there). One file's bytes and tensors at a time."""
    models_of: dict[str, set[tuple[str, str]]] = {}
    for row, adapters in wanted.items():
        for adapter in adapters:
            models_of.setdefault(adapter.uri, set()).add((specs[row], adapter.expert))
    limits = lora_limits(options.limits)
    facts = {}
    for uri, models in models_of.items():
        try:
            data = read_media(readable_location(uri), limits, options.storage_options)
            sha, tensors = sha256_hex(data), adapter_tensors(data)
            del data
        except (MediaError, ValueError, ConfigError) as exc:
            text = str(exc) if uri in str(exc) else f"{exc} ({uri})"
            facts.update({(uri, *model): (None, text) for model in models})
            continue
        for model, expert in sorted(models):
            problem = _fit(model, tensors, expert)
            facts[(uri, model, expert)] = (None, f"{uri}: {problem}") if problem else (sha, "")
        del tensors
    return facts


def _fit(model: str, tensors: dict, expert: str) -> str:
    if resolve_model(model).kind == "null":
        return "the null model takes no LoRA"
    return fit_problem(model, tensors, expert)
