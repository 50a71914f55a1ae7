"""What report.html shows, computed from a catalog (final) or plan rows + ledger (live).

Vectorised where the row count matters: a 100,000-row catalog becomes page data in well
under a second. Nothing here formats HTML (page.py does, escaping every string).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.outputs.encode import clip_extension
from pipeline.outputs.qc import FLAGS_COLUMN

PROMPT_CHARS = 240  # per card; the catalog has the full prompt
IDS_PER_GROUP = 20  # row ids listed per failure class
FLAGGED_LISTED = 200  # QC-flagged rows listed with their scores
_CONTROL_RE2 = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"  # the same set, for pyarrow (RE2)
_CONTROL = re.compile(_CONTROL_RE2)
_KEY = re.compile(r"[0-9a-f]{8,64}")
_ERROR_CLASS = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Failed|Interrupt|Exit))\b")
_QUARANTINED = re.compile(r"^quarantined after \d+ attempts: (.*)$", re.S)


def clean(value) -> str:
    """Text with control characters (NUL included) shown as U+FFFD; None as ''."""
    return _CONTROL.sub("\ufffd", "" if value is None else str(value))


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
    errors = catalog["error"].to_pylist()
    names = set(catalog.column_names)
    flags = catalog[FLAGS_COLUMN].to_pylist() if FLAGS_COLUMN in names else [None] * len(status)
    keys = catalog["key"].to_pylist()
    if not all(_KEY.fullmatch(k) for k in keys):  # keys become paths: hex only
        raise ValueError("catalog keys must be lowercase hex")
    return {
        "ext": ext,
        "id": _cleaned(catalog["id"]),
        "prompt": _cleaned(pc.utf8_slice_codeunits(catalog["prompt"], 0, PROMPT_CHARS)),
        "seed": pc.cast(catalog["seed"], pa.string()).to_pylist(),
        "key": keys,
        "status": "".join(STATUS_LETTERS.get(s, "p") for s in status),
        "flags": {i: " ".join(f) for i, f in enumerate(flags) if f},
        "error": {
            i: error_class(e) for i, (s, e) in enumerate(zip(status, errors)) if s == "failed"
        },
    }


STATUS_LETTERS = {"ok": "o", "failed": "f", "pending": "p"}


def build_report_data(catalog: pa.Table, context: dict) -> ReportData:
    ext = clip_extension(context.get("encode", {}).get("format", "mp4"))
    sheet = contact_sheet(catalog, ext)
    flags = [sheet["flags"].get(i, "").split() for i in range(catalog.num_rows)]
    return ReportData(
        counts=context.get("counts", {}),
        sheet=sheet,
        failures=failure_groups(sheet, catalog["error"].to_pylist()),
        flag_counts=_flag_counts(flags),
        flagged=_flagged_rows(catalog, flags),
        flagged_total=len(sheet["flags"]),
        **_throughput(catalog["finished_at"].to_pylist(), catalog["status"].to_pylist()),
        context=context,
    )


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


def _flag_counts(flags: list) -> dict:
    counts: dict[str, int] = {}
    for row_flags in flags:
        for name in row_flags or ():
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _flagged_rows(catalog: pa.Table, flags: list) -> list[dict]:
    positions = [i for i, f in enumerate(flags) if f][:FLAGGED_LISTED]
    if not positions:
        return []
    wanted = ["id", "status", "qc_luma_mean", "qc_luma_std", "qc_motion", "qc_flicker"]
    table = catalog.take(pa.array(positions)).select(wanted)
    return [{**row, "flags": flags[i]} for row, i in zip(table.to_pylist(), positions)]


def _throughput(finished_at: list, status: list, bins: int = 60) -> dict:
    """Finished items per time bin over the whole run (ok and failed)."""
    stamps = sorted(
        datetime.fromisoformat(s).timestamp()
        for s, state in zip(finished_at, status)
        if s and state in ("ok", "failed")
    )
    if not stamps:
        return {"throughput": [], "bin_s": 0.0}
    span = max(stamps[-1] - stamps[0], 1.0)
    bin_s = max(span / bins, 1.0)
    counts = [0] * (int(span // bin_s) + 1)
    for stamp in stamps:
        counts[int((stamp - stamps[0]) // bin_s)] += 1
    return {
        "throughput": [(stamps[0] + i * bin_s, n) for i, n in enumerate(counts)],
        "bin_s": bin_s,
    }
