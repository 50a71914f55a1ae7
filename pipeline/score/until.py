"""Render until good (adaptive best of N): `--until NAME>=VALUE --max-variants M`.

Every row's variant 0 renders first; a row's variant i renders only when its variants
0..i-1 are finished and scored and none scored NAME >= VALUE; a row stops at its first
passing variant, or after M. Decisions read only recorded scores (each a pure function of
its clip, scored once: driver/scoring.py) and the plan holds all M variants of every row
(one composition, so one set of pixels), hence the same manifest, settings and models
give the same rendered set and pixels whatever the actors, order or interruptions.

`frontier` walks each row's variants in order: a variant not finished is needed now; a
finished one not yet scored means wait; a failed one counts as not passing, unless it is
being retried (--retry-failed: a variant that had failed before this run renders again,
once, where the walk reaches it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pyarrow as pa

from pipeline.score.base import ScoreError

_RULE = re.compile(r"^\s*([a-z_]+)\s*>=\s*(\S+)\s*$")


@dataclass(frozen=True)
class Until:
    name: str  # the score
    threshold: float  # a variant passes when its score >= this
    max_variants: int  # variants tried per row at most


def parse_until(text: str, max_variants: int) -> Until:
    match = _RULE.match(text)
    value = float(match.group(2)) if match and _number(match.group(2)) else math.nan
    if not match or not math.isfinite(value):
        raise ScoreError(f"--until {text!r}: expected NAME>=VALUE, e.g. clip>=25")
    if max_variants < 1:
        raise ScoreError("--max-variants must be at least 1")
    return Until(match.group(1), value, max_variants)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class Frontier:
    needed: set[str] = field(default_factory=set)  # keys to render now
    waiting: int = 0  # rows whose last finished variant has no score yet
    passed: dict[str, bool | None] = field(default_factory=dict)  # source -> None: open
    last: dict[str, int] = field(default_factory=dict)  # source -> last variant in play


def frontier(
    rows: pa.Table,
    statuses: dict[str, str],
    scores: dict,
    until: Until,
    retry: frozenset[str] = frozenset(),
) -> Frontier:
    """`rows`: plan rows (source_id, variant, key), each row's variants together and in
    order (the plan's row-major expansion); `statuses`: finished key -> ok|failed;
    `scores`: key -> its score (None where the scorer failed); `retry`: failed keys to
    render again rather than count as tried."""
    out = Frontier()
    sources = rows["source_id"].to_pylist()
    variants = rows["variant"].to_pylist()
    keys = rows["key"].to_pylist()
    start = 0
    while start < len(keys):
        end = start
        while end < len(keys) and sources[end] == sources[start]:
            end += 1
        group = list(zip(variants[start:end], keys[start:end]))
        _walk(out, sources[start], group, statuses, scores, until, retry)
        start = end
    return out


def _walk(out: Frontier, source: str, group, statuses, scores, until: Until, retry) -> None:
    """One row's variants in order, up to the first one that decides what happens next."""
    out.passed[source] = None
    for variant, key in group[: until.max_variants]:
        out.last[source] = variant
        status = statuses.get(key)
        if status is None or (status == "failed" and key in retry):  # render it now
            out.needed.add(key)
            return
        if status == "ok" and key not in scores:  # rendered, not scored yet: wait
            out.waiting += 1
            return
        value = scores.get(key) if status == "ok" else None
        if value is not None and value >= until.threshold:
            out.passed[source] = True
            return
    out.passed[source] = False  # every variant tried, none passed
