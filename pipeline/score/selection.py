"""Keeping the best of N: which variants of each manifest row are `selected`.

    --keep K --by NAME        per source row, the K variants with the highest score_NAME
                              (ties: the lower variant index wins)
    --min-score NAME=VALUE    a variant scoring below VALUE (or with no score) is dropped;
                              with --keep, the K best among those left

A variant without the score (failed render, failed scorer, not scored yet) is never
selected. No selection asked for: the `selected` column is null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ScoreSettings
from pipeline.schema import SCORE_PREFIX
from pipeline.score.base import ScoreError


@dataclass(frozen=True)
class Selection:
    keep: int | None = None  # --keep K
    by: str | None = None  # --by NAME
    min_scores: tuple[tuple[str, float], ...] = ()  # --min-score NAME=VALUE, each

    @classmethod
    def of(cls, settings: ScoreSettings) -> Selection:
        return cls(settings.keep, settings.by, settings.min_scores)

    @property
    def asked(self) -> bool:
        return self.keep is not None or bool(self.min_scores)

    def scorers(self) -> tuple[str, ...]:
        """The scorers this selection reads (each must be among the run's)."""
        names = [self.by] if self.by else []
        return tuple(dict.fromkeys([*names, *(name for name, _ in self.min_scores)]))


def check_selection(selection: Selection, available: tuple[str, ...]) -> None:
    """ScoreError (exit 2, before any render) for a selection the run cannot compute."""
    if selection.keep is not None and (selection.by is None or selection.keep < 1):
        raise ScoreError("--keep K needs K >= 1 and --by NAME (the score to rank by)")
    if selection.by is not None and selection.keep is None:
        raise ScoreError("--by NAME needs --keep K (how many variants per row to keep)")
    missing = [name for name in selection.scorers() if name not in available]
    if missing:
        known = ", ".join(available) or "none: add --score NAME"
        raise ScoreError(f"selection reads score(s) {missing} the run does not compute: {known}")


def parse_min_score(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not name.strip() or not np.isfinite(number):
        raise ScoreError(f"--min-score {text!r}: expected NAME=VALUE, e.g. clip=25")
    return name.strip(), number


def selected(catalog: pa.Table, selection: Selection) -> pa.Array:
    """The `selected` column for `catalog` (needs source_id, variant and the score columns)."""
    n = catalog.num_rows
    if not selection.asked:
        return pa.nulls(n, pa.bool_())
    passing = np.ones(n, bool)
    for name, floor in selection.min_scores:
        values = _scores(catalog, name)
        with np.errstate(invalid="ignore"):
            passing &= values >= floor  # NaN (no score) never passes
    if selection.keep is None:
        return pa.array(passing)
    values = _scores(catalog, selection.by)
    passing &= ~np.isnan(values)
    source = pc.dictionary_encode(catalog["source_id"]).combine_chunks().indices
    source = np.asarray(source.to_numpy(zero_copy_only=False), np.int64)
    variant = np.asarray(catalog["variant"].to_numpy(zero_copy_only=False), np.int64)
    # Per source row: passing first, then the highest score, then the lowest variant.
    order = np.lexsort((variant, -np.nan_to_num(values, nan=-np.inf), ~passing, source))
    grouped = source[order]
    starts = np.concatenate([[0], np.flatnonzero(grouped[1:] != grouped[:-1]) + 1])
    rank = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    keep = np.zeros(n, bool)
    keep[order] = rank < selection.keep
    return pa.array(keep & passing)


def _scores(catalog: pa.Table, name: str) -> np.ndarray:
    column = pc.fill_null(catalog[SCORE_PREFIX + name].cast(pa.float64()), float("nan"))
    return np.asarray(column.to_numpy(zero_copy_only=False), float)
