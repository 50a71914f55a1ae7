"""What report.html shows, computed from a catalog (final) or plan rows + ledger (live).

Vectorised where the row count matters: a 100,000-row catalog becomes page data in well
under a second. Nothing here formats HTML (page.py does, escaping every string).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.outputs.encode import clip_extension
from pipeline.rundir.layout import CLIPS_DIR, INPUT_EXT, INPUTS_DIR, THUMB_EXT, THUMBS_DIR
from pipeline.schema import (
    MEDIA_COLUMNS,
    QC_FLAGS,
    QC_REPORTED,
    SCORE_ERRORS,
    SCORE_PREFIX,
    SELECTED,
)

PROMPT_CHARS = 160  # per card; the catalog has the full prompt
# Rows the contact sheet embeds (~110 bytes each): a 100,000-row run shows every row; a
# bigger one shows every failed or flagged row plus an evenly spaced sample of the rest.
SHEET_ROWS = 100_000
IDS_PER_GROUP = 20  # row ids listed per failure class
FLAGGED_LISTED = 200  # QC-flagged rows listed with their scores
_CONTROL_RE2 = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"  # the same set, for pyarrow (RE2)
_CONTROL = re.compile(_CONTROL_RE2)
_KEY_RE2 = r"^[0-9a-f]{8,64}$"
_ERROR_CLASS = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Failed|Interrupt|Exit))\b")
_QUARANTINED = re.compile(r"^quarantined after \d+ attempts: (.*)$", re.S)


def clean(value) -> str:
    """Text with control characters (NUL included) shown as U+FFFD; None as ''."""
    return _CONTROL.sub("\ufffd", "" if value is None else str(value))


@lru_cache(maxsize=4096)  # a run has few distinct messages and many rows per message
def error_class(error: str | None) -> str:
    """A short, stable class for grouping failures: the exception name when the message
    starts with one, 'quarantined: <name>' for a row that kept killing its actor, else the
    message with numbers masked (so 'storage error: ... 3' and '... 4' group together)."""
    text = clean(error).strip()
    quarantined = _QUARANTINED.match(text)
    if quarantined:
        return "quarantined: " + error_class(quarantined.group(1))
    match = _ERROR_CLASS.match(text)
    if match:
        return match.group(1)
    return re.sub(r"\d+(\.\d+)?", "N", text.split("\n", 1)[0])[:80] or "(no message)"


@dataclass(frozen=True)
class FailureGroup:
    error_class: str
    count: int
    ids: tuple[str, ...]  # the first IDS_PER_GROUP, in manifest order
    example: str


@dataclass(frozen=True)
class ReportData:
    counts: dict
    sheet: dict  # the contact sheet's rows, column-wise (see contact_sheet)
    failures: list[FailureGroup]
    flag_counts: dict
    flagged: list[dict]  # FLAGGED_LISTED rows: id, flags, scores
    flagged_total: int
    throughput: list[tuple[float, int]]  # (unix time of bin start, items in the bin)
    bin_s: float
    context: dict


def _cleaned(column: pa.ChunkedArray) -> list[str]:
    text = pc.fill_null(pc.cast(column, pa.string()), "")
    return pc.replace_substring_regex(text, _CONTROL_RE2, "\ufffd").to_pylist()


def contact_sheet(catalog: pa.Table, ext: str) -> dict:
    """Column-wise, so 100,000 rows stay small and build fast: ids, prompts (cut), seeds as
    strings, keys (the page derives thumbs/ and clips/ paths), one status letter per row,
    and the flags and error classes of only the rows that have them, by row position."""
    status = catalog["status"].to_pylist()
    failed = np.flatnonzero(pc.equal(catalog["status"], "failed").to_numpy(zero_copy_only=False))
    errors = catalog["error"].take(pa.array(failed, pa.int64())).to_pylist()
    names = set(catalog.column_names)
    flags = catalog[QC_FLAGS].to_pylist() if QC_FLAGS in names else []
    if not pc.all(pc.match_substring_regex(catalog["key"], _KEY_RE2)).as_py():
        raise ValueError("catalog keys must be lowercase hex")  # keys become paths
    return {
        "ext": ext,
        # where the page finds a key's files, relative to the run dir (rundir/layout.py)
        "clips_dir": CLIPS_DIR,
        "thumbs_dir": THUMBS_DIR,
        "thumb_ext": THUMB_EXT,
        "inputs_dir": INPUTS_DIR,
        "input_ext": INPUT_EXT,
        # media rows: the inputs shown beside the clip, by row position
        "inputs": _inputs(catalog),
        "id": _cleaned(catalog["id"]),
        "prompt": _cleaned(pc.utf8_slice_codeunits(catalog["prompt"], 0, PROMPT_CHARS)),
        "seed": pc.cast(catalog["seed"], pa.string()).to_pylist(),
        "key": catalog["key"].to_pylist(),
        "status": "".join(STATUS_LETTERS.get(s, "p") for s in status),
        "flags": {i: " ".join(f) for i, f in enumerate(flags) if f},
        "error": {int(i): error_class(e) for i, e in zip(failed, errors)},
        "sound": _sound(catalog),
        **best_of_n(catalog),
    }


def best_of_n(catalog: pa.Table) -> dict:
    """Variants (a row's renders sit together in catalog order), their scores and which
    were kept: `variant` for rows of a row with several, `scores` one line per scored row,
    `kept` the selected row positions."""
    names = [n for n in catalog.column_names if n.startswith(SCORE_PREFIX) and n != SCORE_ERRORS]
    out: dict = {"variant": {}, "scores": {}, "kept": []}
    if "variant" in catalog.column_names:
        variant = catalog["variant"].to_pylist()
        several = pc.value_counts(catalog["source_id"])
        many = {v["values"] for v in several.to_pylist() if v["counts"] > 1}
        sources = catalog["source_id"].to_pylist()
        out["variant"] = {i: v for i, (v, s) in enumerate(zip(variant, sources)) if s in many}
    columns = {n[len(SCORE_PREFIX) :]: catalog[n].to_pylist() for n in names}
    for i in range(catalog.num_rows if columns else 0):
        parts = [
            f"{name} {values[i]:.2f}" for name, values in columns.items() if values[i] is not None
        ]
        if parts:
            out["scores"][i] = " \u00b7 ".join(parts)
    if SELECTED in catalog.column_names:
        out["kept"] = np.flatnonzero(pc.fill_null(catalog[SELECTED], False).to_numpy()).tolist()
    return out


STATUS_LETTERS = {"ok": "o", "failed": "f", "pending": "p"}


def _sound(catalog: pa.Table) -> dict[int, str]:
    """Per ok row whose clip carries sound, its length ("1.04 s"): the page offers to play
    the clip with it."""
    if "audio_sha256" not in catalog.column_names:
        return {}
    durations = catalog["audio_duration_s"].to_pylist()
    ok = catalog["status"].to_pylist()
    return {
        i: f"{seconds:.2f} s"
        for i, (seconds, status) in enumerate(zip(durations, ok))
        if seconds is not None and status == "ok"
    }


def _inputs(catalog: pa.Table) -> dict[int, list[str]]:
    """Per row with media (ok rows: their fitted inputs are in the run dir), the names."""
    present = [name for name in MEDIA_COLUMNS if name in catalog.column_names]
    if not present:
        return {}
    ok = pc.equal(catalog["status"], "ok").to_pylist()
    given = {name: pc.is_valid(catalog[name]).to_pylist() for name in present}
    found = {}
    for i, done in enumerate(ok):
        names = [name for name in present if given[name][i]]
        if done and names:
            found[i] = names
    return found


def build_report_data(catalog: pa.Table, context: dict) -> ReportData:
    ext = clip_extension(context.get("encode", {}).get("format", "mp4"))
    shown = sample_rows(catalog, SHEET_ROWS)
    sheet = contact_sheet(shown, ext) | {"total": catalog.num_rows}
    flags = {i: names.split() for i, names in sheet["flags"].items()}
    return ReportData(
        counts=context.get("counts", {}),
        sheet=sheet,
        failures=failure_groups(sheet, shown["error"].to_pylist()),
        flag_counts=_flag_counts(flags),
        flagged=_flagged_rows(shown, flags),
        flagged_total=len(sheet["flags"]),
        **_throughput(catalog),
        context=context,
    )


def sample_rows(catalog: pa.Table, limit: int) -> pa.Table:
    """At most `limit` rows in manifest order: failed and flagged rows first in line."""
    if catalog.num_rows <= limit:
        return catalog
    marked = pc.equal(catalog["status"], "failed")
    if QC_FLAGS in catalog.column_names:
        marked = pc.or_(
            marked, pc.fill_null(pc.greater(pc.list_value_length(catalog[QC_FLAGS]), 0), False)
        )
    marked = marked.to_numpy(zero_copy_only=False)
    keep = np.flatnonzero(marked)[:limit]
    rest = np.flatnonzero(~marked)
    room = limit - len(keep)
    if room > 0 and len(rest):
        keep = np.concatenate([keep, rest[np.linspace(0, len(rest) - 1, room).astype(np.int64)]])
    return catalog.take(pa.array(np.unique(keep)))


def failure_groups(sheet: dict, errors: list) -> list[FailureGroup]:
    groups: dict[str, list] = {}
    for row, name in sheet["error"].items():  # failed rows, in manifest order
        groups.setdefault(name, []).append(row)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [
        FailureGroup(
            name,
            len(rows),
            tuple(sheet["id"][r] for r in rows[:IDS_PER_GROUP]),
            clean(errors[rows[0]]),
        )
        for name, rows in ordered
    ]


def _flag_counts(flags: dict[int, list[str]]) -> dict:
    counts: dict[str, int] = {}
    for row_flags in flags.values():
        for name in row_flags:
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _flagged_rows(catalog: pa.Table, flags: dict[int, list[str]]) -> list[dict]:
    positions = sorted(flags)[:FLAGGED_LISTED]
    if not positions:
        return []
    wanted = ["id", "status", *QC_REPORTED]
    table = catalog.take(pa.array(positions)).select(wanted)
    return [{**row, "flags": flags[i]} for row, i in zip(table.to_pylist(), positions)]


def _throughput(catalog: pa.Table, bins: int = 60) -> dict:
    """Finished items per time bin over the whole run (ok and failed)."""
    done = pc.is_in(catalog["status"], value_set=pa.array(["ok", "failed"]))
    finished = pc.cast(catalog["finished_at"].filter(done), pa.timestamp("ms", tz="UTC"))
    stamps = pc.cast(finished.drop_null(), pa.int64()).to_numpy() / 1000.0
    if not len(stamps):
        return {"throughput": [], "bin_s": 0.0}
    first, span = stamps.min(), max(stamps.max() - stamps.min(), 1.0)
    bin_s = max(span / bins, 1.0)
    counts = np.bincount(((stamps - first) // bin_s).astype(np.int64))
    return {
        "throughput": [(first + i * bin_s, int(n)) for i, n in enumerate(counts)],
        "bin_s": bin_s,
    }
