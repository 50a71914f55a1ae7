"""`promptreel score RUN`: add scores (and a selection) to a run dir without touching a clip.

The clips are scored as stored (read back and decoded), by the same stage a render uses
(driver/scoring.py), so scores agree whichever computed them. Only the clips lacking a
current score are scored; the catalog and report are rewritten only when they change, so
running it again does nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipeline.config import ClusterSettings, ScoreSettings
from pipeline.driver.rounds import carry_outcome
from pipeline.driver.scoring import ScoreStage, catalog_scores, resolve_all, scorer_names
from pipeline.errors import ConfigError
from pipeline.outputs.encode import clip_extension
from pipeline.report import write_report
from pipeline.rundir import catalog as catalog_mod
from pipeline.rundir.jobjson import read_job, record_scorers
from pipeline.rundir.layout import RunDir
from pipeline.rundir.ledger import Ledger
from pipeline.rundir.lock import DriverLock
from pipeline.score.base import ScoreError
from pipeline.score.selection import Selection, check_selection


@dataclass(frozen=True)
class ScoreResult:
    scored: int  # clips scored by this command
    lost: int  # clips whose scoring call failed as a whole (scored by the next run)
    rewritten: bool  # catalog and report changed


class _NeverStop:
    stopping = False


def score_run(run: RunDir, settings: ScoreSettings, cluster: ClusterSettings) -> ScoreResult:
    job = read_job(run)
    catalog = catalog_mod.read_catalog(run)
    if job is None or catalog is None:
        raise ConfigError(f"{run.url} is not a finished run dir (no job.json or catalog.parquet)")
    if settings.until is not None:
        raise ScoreError("--until renders variants: give it to `promptreel render`")
    scorers = resolve_all(settings)  # a wrong checkpoint: exit 2 before anything starts
    check_selection(Selection.of(settings), scorer_names(run, scorers))
    lock = DriverLock(run, ttl_s=120.0)
    lock.acquire()
    try:
        run_scorers = record_scorers(run, {s.name: s.describe() for s in scorers})
        scored = lost = 0
        if scorers:
            prompts = dict(zip(catalog["key"].to_pylist(), catalog["prompt"].to_pylist()))
            ext = clip_extension(job["encode"]["format"])
            stage = ScoreStage(settings, scorers, run, ext, 5.0, prompts)
            stage.add(stage.missing(Ledger(run).read(("status", "sha256"))))
            if stage.queue:
                stage.score_only(cluster, _NeverStop())
            scored, lost = stage.scored, stage.lost
        passthrough = catalog_mod.passthrough_of(catalog)
        selection = Selection.of(settings)
        rescored = catalog_mod.with_scores(
            catalog, passthrough, catalog_scores(run, run_scorers), selection
        )
        rescored = carry_outcome(rescored, catalog, selection.asked)
        rewritten = not rescored.equals(catalog)
        if rewritten:
            catalog_mod.write_catalog(run, rescored)
            write_report(run, rescored, _summary(run))
    finally:
        lock.release()
    return ScoreResult(scored, lost, rewritten)


def _summary(run: RunDir) -> dict:
    data = run.read_bytes(run.summary)
    return json.loads(data) if data else {}
