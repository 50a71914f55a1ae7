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
from pipeline.outputs.thumbnail import thumb_relpath

PROMPT_CHARS = 240  # per card; the catalog has the full prompt
IDS_PER_GROUP = 20  # row ids listed per failure class
FLAGGED_LISTED = 200  # QC-flagged rows listed with their scores
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
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
    cards: list  # [id, prompt, seed, status, thumb path or "", clip path or "", flags, error]
    failures: list[FailureGroup]
    flag_counts: dict
    flagged: list[dict]  # FLAGGED_LISTED rows: id, flags, scores
    flagged_total: int
    throughput: list[tuple[float, int]]  # (unix time of bin start, items in the bin)
    bin_s: float
    context: dict


def build_report_data(catalog: pa.Table, context: dict) -> ReportData:
    ext = clip_extension(context.get("encode", {}).get("format", "mp4"))
    names = set(catalog.column_names)
    status = catalog["status"].to_pylist()
    keys = catalog["key"].to_pylist()
    flags = catalog[FLAGS_COLUMN].to_pylist() if FLAGS_COLUMN in names else [None] * len(keys)
    errors = catalog["error"].to_pylist()
    prompts = pc.utf8_slice_codeunits(catalog["prompt"], 0, PROMPT_CHARS).to_pylist()
    cards = [
        [
            clean(row_id),
            clean(prompt),
            str(seed),
            state,
            thumb_relpath(key) if state == "ok" else "",
            f"clips/{key[:2]}/{key}.{ext}" if state == "ok" else "",
            " ".join(flag or ()),
            error_class(error) if error else "",
        ]
        for row_id, prompt, seed, state, key, flag, error in zip(
            catalog["id"].to_pylist(),
            prompts,
            catalog["seed"].to_pylist(),
            status,
            keys,
            flags,
            errors,
        )
    ]
    return ReportData(
        counts=context.get("counts", {}),
        cards=cards,
        failures=failure_groups(cards, errors),
        flag_counts=_flag_counts(flags),
        flagged=_flagged_rows(catalog, flags),
        flagged_total=sum(1 for f in flags if f),
        **_throughput(catalog["finished_at"].to_pylist(), status),
        context=context,
    )


def failure_groups(cards: list, errors: list) -> list[FailureGroup]:
    groups: dict[str, list] = {}
    for card, error in zip(cards, errors):
        if card[3] == "failed":
            groups.setdefault(card[7] or "(no message)", []).append((card[0], error))
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [
        FailureGroup(name, len(rows), tuple(i for i, _ in rows[:IDS_PER_GROUP]), clean(rows[0][1]))
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
