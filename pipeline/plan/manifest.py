"""Validate a manifest table (read by pipeline/plan/readers.py), vectorised.

Every problem in every row is reported at once, by row number (from 0) and id.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import ConfigError, ManifestError, RowProblem, show_value
from pipeline.models import resolve_model
from pipeline.models.families import FAMILIES, PARAMS
from pipeline.plan.family_rules import check_row_rules, check_shapes, check_steps
from pipeline.plan.lora_rows import lora_column
from pipeline.plan.media_rows import (
    MediaOptions,
    check_media_params,
    image_fact,
    manifest_folder,
    media_columns,
    rows_with_media,
    task_models,
)
from pipeline.plan.readers import read_manifest
from pipeline.plan.reference_rows import reference_column
from pipeline.plan.seed_aliases import seed_aliases
from pipeline.schema import (
    FAMILY_PARAM_COLUMNS,
    FLOAT_PARAMS,
    INT_PARAMS,
    MAX_SEED,
    MAX_VARIANTS,
    PRIORITY,
    REQUEST_COLUMNS,
    ROW,
    VALIDATED_COLUMNS,
    VARIANTS,
    free_name,
    reserved_reason,
)

SEED_EXPECTED = "an integer in 0..2**64-1"
_NUMBER_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_FIELD_ORDER = {name: i for i, name in enumerate((ROW, *REQUEST_COLUMNS))}
_EXACT_FLOAT = 2.0**53  # floats at or above this are not exact integers


# Upper bounds far beyond any real model, so a typo (height 48000) fails here, not as an
# out-of-memory on a GPU after hours of queueing.
_INT_LIMITS = {"height": 8192, "width": 8192, "num_frames": 4097, "num_inference_steps": 1000}


def _whole_upto(limit: int):
    return lambda v: (v > 0) & (v <= limit) & (np.floor(v) == v)


_PARAM_RULES = {
    name: (_whole_upto(limit), f"a positive integer up to {limit}")
    for name, limit in _INT_LIMITS.items()
} | {
    "fps": (lambda v: np.isfinite(v) & (v > 0), "a positive finite number"),
    "guidance_scale": (lambda v: np.isfinite(v) & (v >= 0), "a finite number >= 0"),
}


@dataclass(frozen=True)
class ValidatedManifest:
    table: pa.Table  # VALIDATED_COLUMNS, then the passthrough columns unchanged
    warnings: tuple[RowProblem, ...] = ()
    passthrough: tuple[str, ...] = ()


def load(
    url: str, storage_options: dict | None = None, media: MediaOptions | None = None, **options
) -> ValidatedManifest:
    """read_manifest + validate; relative media paths resolve against the manifest's folder."""
    media = media or MediaOptions(storage_options=storage_options)
    media = dataclasses.replace(media, base=media.base or manifest_folder(url))
    return validate(read_manifest(url, storage_options), media=media, **options)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _mask(array) -> np.ndarray:
    """Boolean numpy mask; nulls count as False."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _to_text(table: pa.Table, name: str) -> pa.ChunkedArray:
    """The column as strings; all null where absent or not castable to text."""
    try:
        return _plain(table[name]).cast(pa.string())
    except (KeyError, pa.ArrowException, NotImplementedError):
        return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])


def _blank(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where null, empty or only whitespace."""
    blank = pc.or_(pc.equal(pc.binary_length(text), 0), pc.utf8_is_space(text))
    return pc.fill_null(blank, True)


def _parse_seeds(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 seeds, valid mask): ints >= 0, uint64, exact integral floats, decimal text."""
    column = _plain(column)
    kind, valid = column.type, _mask(pc.is_valid(column))
    if pa.types.is_unsigned_integer(kind):
        return pc.fill_null(column.cast(pa.uint64()), 0).to_numpy(), valid
    if pa.types.is_integer(kind):
        values = pc.fill_null(column.cast(pa.int64()), -1).to_numpy()
        valid &= values >= 0
        return np.where(valid, values, 0).astype(np.uint64), valid
    if pa.types.is_floating(kind):
        values = np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), float)
        with np.errstate(invalid="ignore"):
            valid &= (values >= 0) & (values < _EXACT_FLOAT) & (np.floor(values) == values)
        return np.where(valid, values, 0).astype(np.uint64), valid
    if pa.types.is_decimal(kind):
        column = pc.replace_substring_regex(column.cast(pa.string()), r"\.0*$", "")
    elif not _is_text(kind):  # bool, nested, ...: never a seed
        return np.zeros(len(column), np.uint64), np.zeros(len(column), bool)
    stripped = pc.utf8_trim_whitespace(column.cast(pa.string()))
    digits = _mask(pc.match_substring_regex(stripped, r"^[0-9]+$"))
    text = pc.utf8_ltrim(stripped, characters="0")
    length = pc.fill_null(pc.binary_length(text), 0).to_numpy()
    # Same length, only digits: comparing as text is comparing as numbers.
    valid &= digits & ((length < 20) | ((length == 20) & _mask(pc.less_equal(text, str(MAX_SEED)))))
    text = pc.if_else(pa.array(valid & (length > 0)), text, "0")
    return text.cast(pa.uint64()).to_numpy(), valid


def _parse_numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, given mask): NaN where a given cell is not a number."""
    column = _plain(column)
    kind, given = column.type, _mask(pc.is_valid(column))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = column.cast(pa.float64(), safe=False)
    elif _is_text(kind):
        text = pc.utf8_trim_whitespace(column)
        ok = pc.match_substring_regex(text, _NUMBER_RE)
        numbers = pc.if_else(ok, text, pa.scalar(None, text.type)).cast(pa.float64())
    else:
        numbers = pa.nulls(len(column), pa.float64())
    return np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=float), given


class _Problems:
    """Collects RowProblems from boolean masks, fetching ids and values only for bad rows."""

    def __init__(self, table: pa.Table, ids: pa.ChunkedArray):
        self.table, self.ids, self.items = table, ids, []

    def add(self, mask: np.ndarray, field: str, expected: str) -> None:
        rows = np.flatnonzero(mask)
        if len(rows):
            got = self.table[field].take(pa.array(rows)).to_pylist()
            self.extend(rows, field, [f"expected {expected}, got {show_value(v)}" for v in got])

    def extend(self, rows, field: str, messages: list[str]) -> None:
        ids = self.ids.take(pa.array(np.asarray(rows, np.int64))).to_pylist()
        for row, row_id, message in zip(rows, ids, messages, strict=True):
            self.items.append(RowProblem(int(row), row_id, field, message))

    def rows(self, field: str | None = None) -> np.ndarray:
        """Mask of the rows with a problem (on `field`, when given)."""
        bad = np.zeros(len(self.ids), bool)
        bad[[p.row for p in self.items if field in (None, p.field)]] = True
        return bad


def _column_problems(names: list[str]) -> list[RowProblem]:
    found = [(name, "is required") for name in ("prompt", "seed") if name not in names]
    found += [
        (name, "appears more than once") for name in dict.fromkeys(names) if names.count(name) > 1
    ]
    for name in names:
        reason = reserved_reason(name)
        if reason:
            found.append((name, f"{reason}; rename it (e.g. {free_name(name)!r})"))
    return [RowProblem(None, None, name, f"column {name!r} {what}") for name, what in found]


def validate(
    table: pa.Table,
    default_model: str = "tiny",
    strict_seeds: bool = False,
    media: MediaOptions | None = None,
) -> ValidatedManifest:
    """Check every row; raise ManifestError listing all problems, or return the normal form."""
    names = table.column_names
    column_problems = _column_problems(names)
    if column_problems:
        raise ManifestError(column_problems)
    n = table.num_rows
    text_ids = _to_text(table, "id")
    ids = pc.if_else(_blank(text_ids), pa.scalar(None, pa.string()), text_ids)
    problems = _Problems(table, ids)
    if "id" in names:  # a given id must be text, and unique
        problems.add(_mask(pc.is_valid(table["id"])) & _mask(pc.is_null(text_ids)), "id", "text")
        _check_duplicate_ids(ids, problems)

    for name in ("prompt", "negative_prompt"):  # a typed number is a mistake, not a prompt
        if name in names and not _is_text_column(table[name].type):
            problems.add(_mask(pc.is_valid(table[name])), name, "text")
    prompt = _to_text(table, "prompt")
    problems.add(_mask(_blank(prompt)), "prompt", "non-empty text")
    seeds, seed_ok = _parse_seeds(table["seed"])
    problems.add(~seed_ok, "seed", SEED_EXPECTED)

    models, codes, families, resolved = _models(table, default_model, problems)
    params = {}
    for name in (*INT_PARAMS, *FLOAT_PARAMS):
        defaults = np.array([family.defaults[name] for family in families], float)[codes]
        values, given = _parse_numbers(table[name]) if name in names else (defaults, defaults < 0)
        rule, expected = _PARAM_RULES[name]
        with np.errstate(invalid="ignore"):
            ok = rule(values)
        problems.add(given & ~ok, name, expected)
        params[name] = np.where(given & ok, values, defaults)
        params[name] = params[name].astype(np.int64 if name in INT_PARAMS else np.float64)
    media_cols = media_columns(
        table, _to_text, codes, families, resolved, params, problems, media or MediaOptions()
    )
    check_shapes(params, codes, families, resolved, problems)
    check_steps(params["num_inference_steps"], codes, families, resolved, problems)
    normalised = {PRIORITY: _priority(table, problems), VARIANTS: _variants(table, problems)}
    has_media = rows_with_media(media_cols)
    family_params = _family_params(table, models, codes, families, resolved, problems, has_media)
    by_name = dict(zip(FAMILY_PARAM_COLUMNS, family_params, strict=True))
    check_media_params(by_name, params, codes, families, problems)
    check_row_rules(by_name, params, codes, families, resolved, problems)

    negative_defaults = [family.defaults["negative_prompt"] for family in families]
    negative = pc.coalesce(
        _to_text(table, "negative_prompt"),
        pa.array(negative_defaults, pa.string()).take(pa.array(codes)),
    )
    columns = [np.arange(n, dtype=np.int64), ids, prompt, negative, pa.array(seeds, pa.uint64())]
    options = media or MediaOptions()
    lora = lora_column(table, models, resolved, problems, options)
    family_of = [families[c] for c in codes.tolist()]
    inspect = functools.cache(lambda location: image_fact(location, options))
    refs = reference_column(table, family_of, resolved, problems, inspect)
    columns += [models, *params.values(), *family_params, *media_cols, lora, refs]  # VALIDATED
    out = pa.Table.from_arrays(columns, names=list(VALIDATED_COLUMNS))
    aliases = seed_aliases(out, ~problems.rows(), strict_seeds)
    if strict_seeds:
        problems.items.extend(aliases)
    if problems.items:
        order = len(_FIELD_ORDER)  # fields after the request's, e.g. priority
        raise ManifestError(
            sorted(problems.items, key=lambda p: (p.row, _FIELD_ORDER.get(p.field, order)))
        )
    passthrough = tuple(name for name in names if name not in REQUEST_COLUMNS)
    for name in passthrough:  # priority and variants in their normal form, the rest as given
        if name in normalised:
            out = out.append_column(name, normalised[name])
        else:
            out = out.append_column(table.schema.field(name), table[name])
    return ValidatedManifest(out, () if strict_seeds else tuple(aliases), passthrough)


def _priority(table: pa.Table, problems: _Problems) -> pa.Array | None:
    """Optional `priority`: a finite number, higher renders first (blank: 0). It orders
    dispatch only: part of neither the key nor the batch composition, so never the pixels."""
    if "priority" not in table.column_names:
        return None
    values, given = _parse_numbers(table["priority"])
    with np.errstate(invalid="ignore"):
        problems.add(given & ~np.isfinite(values), "priority", "a finite number")
    return pa.array(np.where(given & np.isfinite(values), values, 0.0), pa.float64())


def _variants(table: pa.Table, problems: _Problems) -> pa.Array | None:
    """Optional `variants`: how many renders of the row (plan/variants.py); blank: --variants."""
    if VARIANTS not in table.column_names:
        return None
    values, given = _parse_numbers(table[VARIANTS])
    with np.errstate(invalid="ignore"):
        ok = (values >= 1) & (values <= MAX_VARIANTS) & (values == np.floor(values))
    problems.add(given & ~ok, VARIANTS, f"a whole number from 1 to {MAX_VARIANTS}")
    return pa.array(np.where(given & ok, values, 0).astype(np.int64), mask=~(given & ok))


def _check_duplicate_ids(ids: pa.ChunkedArray, problems: _Problems) -> None:
    """Each repeat of a given id is a problem naming the first row with that id."""
    codes = pc.fill_null(pc.dictionary_encode(ids).combine_chunks().indices, -1)
    codes = codes.to_numpy(zero_copy_only=False).astype(np.int64)
    # Codes number the distinct ids in order of first appearance: a row is a first use
    # exactly when its code exceeds every code before it.
    seen = np.maximum.accumulate(np.concatenate([[-1], codes]))[:-1]
    first = codes > seen
    first_row = np.flatnonzero(first)  # indexed by code
    repeated = np.flatnonzero((codes >= 0) & ~first)
    values = ids.take(pa.array(repeated)).to_pylist()
    firsts = first_row[codes[repeated]]
    messages = [
        f"expected a unique id, got {show_value(value)} again (first used on row {first})"
        for value, first in zip(values, firsts, strict=True)
    ]
    problems.extend(repeated, "id", messages)


def _models(table: pa.Table, default_model: str, problems: _Problems):
    """Model specs with the default filled (media rows: see task_models), per-row
    code, family per code, resolved mask."""
    models = _to_text(table, "model")
    models = pc.if_else(_blank(models), default_model, models)
    models = task_models(table, models, _to_text)
    encoded = pc.dictionary_encode(models).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    families = []
    for code, spec in enumerate(encoded.dictionary.to_pylist()):  # few distinct models
        try:
            families.append(resolve_model(spec).family)
        except (ConfigError, OSError, ValueError) as exc:
            families.append(None)
            rows = np.flatnonzero(codes == code)
            problems.extend(rows, "model", [str(exc)] * len(rows))
    resolved = np.array([family is not None for family in families] + [True])[codes]
    families = [family or FAMILIES["tiny"] for family in families] or [FAMILIES["tiny"]]
    return models, codes, families, resolved


def _is_text_column(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return _is_text(kind) or pa.types.is_null(kind)


def _family_params(table, models, codes, families, resolved, problems, has_media):
    """One column per family parameter: the row's value or its family's default; null for
    rows whose family does not take it (a row setting it anyway is a problem), and for
    rows without media where it applies to media rows only (Param.with_media_only)."""
    columns = []
    for name in FAMILY_PARAM_COLUMNS:  # the validated table's order (schema.py)
        param = PARAMS[name]
        own = [family.param(name) for family in families]
        media_only = np.array([bool(p and p.with_media_only) for p in own] + [False])[codes]
        takes = np.array([p is not None for p in own] + [False])[codes]
        takes &= has_media | ~media_only
        defaults = [
            family.default_of(name) if name in family.param_names else np.nan for family in families
        ]
        defaults = np.array(defaults, float)[codes]
        values, given = defaults, np.zeros(len(codes), bool)
        if name in table.column_names:
            values, given = _parse_numbers(table[name])
            with np.errstate(invalid="ignore"):
                ok = param.ok(values) & ((param.kind != "int") | (np.floor(values) == values))
            problems.add(given & takes & ~ok, name, param.expected)
            refused = np.flatnonzero(given & ~takes & resolved)
            if len(refused):
                problems.extend(
                    refused,
                    name,
                    [
                        _not_taken(name, families[codes[row]], models[int(row)].as_py())
                        for row in refused
                    ],
                )
            values = np.where(given & ok, values, defaults)
        kind = pa.int64() if param.kind == "int" else pa.float64()
        array = pa.array(np.where(takes, values, 0.0), pa.float64(), mask=~takes)
        columns.append(array.cast(kind))
    return columns


def _not_taken(name: str, family, spec: str) -> str:
    if family.param(name) is not None:  # Param.with_media_only, on a row without media
        return f"only rows that give {' or '.join(family.media_inputs)} take {name}"
    takes = ", ".join(family.param_names) or "none"
    return (
        f"model {spec!r} ({family.name} family) does not take {name}; "
        f"its family parameters: {takes} (see `promptreel models`)"
    )
