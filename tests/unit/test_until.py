"""Render until good: which variant of each row renders next (pipeline/score/until.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.score.base import ScoreError
from pipeline.score.until import Until, frontier, parse_until

ROWS = pa.table(
    {
        "source_id": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
        "variant": [0, 1, 2] * 3,
        "key": ["a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2"],
    }
)
UNTIL = Until("clip", 20.0, 3)


def test_first_round_renders_every_variant_0():
    state = frontier(ROWS, {}, {}, UNTIL)
    assert state.needed == {"a0", "b0", "c0"}
    assert state.passed == {"a": None, "b": None, "c": None}


def test_a_row_stops_at_its_first_passing_variant_and_waits_for_scores():
    statuses = {"a0": "ok", "b0": "ok", "c0": "failed"}
    state = frontier(ROWS, statuses, {"a0": 25.0}, UNTIL)  # b0 not scored yet
    assert state.needed == {"c1"}  # a passed; b waits for its score; c0 failed: next
    assert state.waiting == 1
    assert state.passed == {"a": True, "b": None, "c": None}
    assert state.last == {"a": 0, "b": 0, "c": 1}


def test_rows_that_never_pass_end_after_max_variants():
    statuses = {k: "ok" for k in ROWS["key"].to_pylist()}
    scores = {"a0": 1.0, "a1": 2.0, "a2": 19.99, "b0": 1.0, "b1": 20.0, "c0": None}
    scores |= {"c1": 5.0, "c2": None}  # None: the scorer failed on that clip
    state = frontier(ROWS, statuses, scores, UNTIL)
    assert state.needed == set() and state.waiting == 0
    assert state.passed == {"a": False, "b": True, "c": False}
    assert state.last == {"a": 2, "b": 1, "c": 2}
    # fewer variants allowed than planned: the row ends earlier
    assert frontier(ROWS, statuses, scores, Until("clip", 20.0, 1)).passed["b"] is False


def test_the_rule_is_parsed_or_refused():
    assert parse_until("clip>=25", 4) == Until("clip", 25.0, 4)
    assert parse_until(" motion >= 1.5 ", 2) == Until("motion", 1.5, 2)
    for bad in ("clip>25", "clip>=", ">=3", "clip>=nan", "clip=3"):
        with pytest.raises(ScoreError, match="expected NAME>=VALUE"):
            parse_until(bad, 3)
    with pytest.raises(ScoreError, match="at least 1"):
        parse_until("clip>=1", 0)


def test_retry_failed_renders_a_variant_that_had_failed_again_in_its_place():
    """--retry-failed: a variant that failed before this run is needed again where the walk
    reaches it (not skipped as tried); one not being retried still counts as tried."""
    statuses = {"a0": "failed", "b0": "ok", "c0": "failed"}
    state = frontier(ROWS, statuses, {"b0": 30.0}, UNTIL, retry=frozenset({"a0", "b0"}))
    assert state.needed == {"a0", "c1"}
    assert state.last == {"a": 0, "b": 0, "c": 1}
    assert state.passed == {"a": None, "b": True, "c": None}
