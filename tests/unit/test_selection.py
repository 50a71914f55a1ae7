"""Keeping the best of N (pipeline/score/selection.py) and how the report shows it."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.report.data import best_of_n
from pipeline.score.base import ScoreError
from pipeline.score.selection import Selection, check_selection, parse_min_score, selected

# Row "a": variants 0..3, a tie between 1 and 3; row "b": one variant without a score.
CATALOG = pa.table(
    {
        "source_id": ["a", "a", "a", "a", "b", "b"],
        "variant": [0, 1, 2, 3, 0, 1],
        "score_clip": [10.0, 30.0, 20.0, 30.0, None, 5.0],
        "score_motion": [1.0, 0.5, 3.0, 2.0, 4.0, 0.0],
        "selected": [None] * 6,
    }
)


def _kept(**selection) -> list:
    return selected(CATALOG, Selection(**selection)).to_pylist()


def test_keep_k_by_a_score_lower_variant_wins_ties_and_no_score_is_never_kept():
    assert _kept(keep=1, by="clip") == [False, True, False, False, False, True]
    assert _kept(keep=2, by="clip") == [False, True, False, True, False, True]
    assert _kept(keep=9, by="clip") == [True, True, True, True, False, True]


def test_min_score_alone_and_with_keep():
    assert _kept(min_scores=(("motion", 1.0),)) == [True, False, True, True, True, False]
    # the best clip score among the variants with motion >= 1
    assert _kept(keep=1, by="clip", min_scores=(("motion", 1.0),)) == [
        False,
        False,
        False,
        True,
        False,
        False,
    ]


def test_no_selection_is_null():
    assert _kept() == [None] * 6


def test_a_selection_the_run_cannot_compute_is_refused():
    with pytest.raises(ScoreError, match="needs K >= 1 and --by"):
        check_selection(Selection(keep=1), ("clip",))
    with pytest.raises(ScoreError, match="--by NAME needs --keep"):
        check_selection(Selection(by="clip"), ("clip",))
    with pytest.raises(ScoreError, match=r"\['aesthetic'\]"):
        check_selection(Selection(keep=1, by="aesthetic"), ("clip",))
    check_selection(Selection(keep=1, by="clip", min_scores=(("clip", 2.0),)), ("clip",))
    assert parse_min_score(" clip = 25 ") == ("clip", 25.0)
    for bad in ("clip", "clip=", "=3", "clip=nan", "clip=x"):
        with pytest.raises(ScoreError, match="expected NAME=VALUE"):
            parse_min_score(bad)


def test_the_report_labels_variants_scores_and_kept_rows():
    catalog = CATALOG.set_column(4, "selected", selected(CATALOG, Selection(keep=1, by="clip")))
    shown = best_of_n(catalog)
    assert shown["variant"] == {i: v for i, v in enumerate([0, 1, 2, 3, 0, 1])}
    assert shown["scores"][1] == "clip 30.00 \u00b7 motion 0.50"
    assert shown["scores"][4] == "motion 4.00"  # no clip score: only what it has
    assert shown["kept"] == [1, 5]


def test_job_json_records_scorers_only_when_a_command_brings_some(tmp_path):
    import json

    from pipeline.rundir.jobjson import claim, record_scorers
    from pipeline.rundir.layout import RunDir

    run = RunDir(str(tmp_path / "run"))
    claim(run, {"model": "m"})
    before = (tmp_path / "run" / "job.json").read_bytes()
    assert record_scorers(run, {}) == {}
    assert (tmp_path / "run" / "job.json").read_bytes() == before  # nothing to record
    clip = {"flag": "clip=/c", "scorer_id": "clip-v1:dir:aa"}
    motion = {"flag": "motion", "scorer_id": "motion-v1"}
    assert record_scorers(run, {"clip": clip}) == {"clip": clip}
    assert record_scorers(run, {"motion": motion}) == {"clip": clip, "motion": motion}
    newer = {**clip, "scorer_id": "clip-v1:dir:bb"}  # another checkpoint replaces it
    assert record_scorers(run, {"clip": newer}) == {"clip": newer, "motion": motion}
    job = json.loads((tmp_path / "run" / "job.json").read_text())
    assert job["model"] == "m" and job["scorers"] == {"clip": newer, "motion": motion}


def test_scores_attach_to_a_catalog_written_before_variants_and_media_rows():
    """`promptreel score` on an old run dir: its catalog lacks source_id, variant and the
    media columns; each row is its own variant 0, and the scores join on the key."""
    from pipeline.plan.manifest import validate
    from pipeline.plan.planner import make_plan
    from pipeline.rundir.catalog import build_catalog, with_scores
    from pipeline.schema import LEDGER_SCHEMA, SCORE_LEDGER_SCHEMA

    rows = make_plan(validate(pa.table({"prompt": ["a", "b"], "seed": [1, 2]})), 1).rows
    new = build_catalog(rows, LEDGER_SCHEMA.empty_table(), ())
    old = new.drop_columns(["source_id", "variant", "image", "last_image", "resize"])
    scores = SCORE_LEDGER_SCHEMA.empty_table()
    scored = with_scores(old, (), {"clip": scores}, Selection(keep=1, by="clip"))
    assert scored["source_id"].to_pylist() == new["id"].to_pylist()
    assert scored["variant"].to_pylist() == [0, 0]
    assert scored["selected"].to_pylist() == [False, False]  # nothing scored yet
