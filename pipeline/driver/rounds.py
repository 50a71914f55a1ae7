"""Render until good, driver side: the rounds of `--until NAME>=VALUE --max-variants M`.

The plan holds every row's M variants; each round renders the variants the frontier
needs now (pipeline/score/until.py), then waits for their scores, until no row needs
another. What decides is read back from the ledgers (results, and the scorer's rows for
this scorer id and clip), so a resume after any kill continues the same rounds.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.arrow_io import parquet_bytes
from pipeline.rundir.layout import RunDir
from pipeline.rundir.ledger import Ledger
from pipeline.schema import SCORE_PASSED, SELECTED
from pipeline.score.until import Frontier, Until, frontier


class Rounds:
    def __init__(
        self,
        until: Until,
        rows: pa.Table,
        ledger: Ledger,
        stage,
        run: RunDir,
        retry: frozenset[str] = frozenset(),
    ):
        self.until = until
        self.rows = rows.select(["source_id", "variant", "key"])
        self.ledger = ledger
        self.stage = stage  # the ScoreStage computing until.name
        self.run = run
        self.retry = retry  # --retry-failed: keys that had failed before this run
        self.sent: set[str] = set()  # keys this run has rendered: retried once, not again
        self.state = Frontier()

    def next(self, pending: pa.Array) -> pa.Array:
        """The pending keys this round renders (empty: no row needs another variant).
        The run's plan keys become the variants in play so far, so `status` counts what
        the run still means to render, not every row's M variants."""
        self.state = self.read()
        keys = in_play(self.rows, self.state).select(["key"])
        self.run.write(self.run.plan_keys, parquet_bytes(keys))
        if not self.state.needed:
            return pa.array([], pa.string())
        needed = pa.array(sorted(self.state.needed), pa.string())
        now = pc.filter(needed, pc.is_in(needed, value_set=pending))
        self.sent.update(now.to_pylist())
        return now

    def read(self) -> Frontier:
        self.ledger.flush()
        self.stage.flush()
        results = self.ledger.read(("status", "sha256"))
        statuses = dict(zip(results["key"].to_pylist(), results["status"].to_pylist()))
        clip_sha = dict(zip(results["key"].to_pylist(), results["sha256"].to_pylist()))
        scorer = next(s for s in self.stage.scorers if s.name == self.until.name)
        rows = self.stage.ledgers[self.until.name].read()
        scores = {
            key: value
            for key, value, scorer_id, sha in zip(
                rows["key"].to_pylist(),
                rows["value"].to_pylist(),
                rows["scorer_id"].to_pylist(),
                rows["sha256"].to_pylist(),
            )
            if scorer_id == scorer.scorer_id and clip_sha.get(key) == sha
        }
        retry = self.retry - self.sent
        return frontier(self.rows, statuses, scores, self.until, frozenset(retry))


def in_play(rows: pa.Table, state: Frontier) -> pa.Table:
    """The plan rows the catalog lists: each row's variants up to its last in play
    (variants its row never needed are not requests of this run)."""
    last = np.array([state.last.get(s, -1) for s in rows["source_id"].to_pylist()])
    variant = np.asarray(rows["variant"].to_numpy(zero_copy_only=False), np.int64)
    return rows.filter(pa.array(variant <= last))


def with_outcome(catalog: pa.Table, state: Frontier) -> pa.Table:
    """`score_passed` (the row's outcome: true, false = never passed, null = still open)
    and `selected` (the passing variant) from the final frontier."""
    sources = catalog["source_id"].to_pylist()
    passed = [state.passed.get(s) for s in sources]
    variant = catalog["variant"].to_pylist()
    chosen = [p is True and v == state.last.get(s) for p, v, s in zip(passed, variant, sources)]
    at = catalog.schema.get_field_index(SELECTED)
    catalog = catalog.set_column(at, SELECTED, pa.array(chosen, pa.bool_()))
    return catalog.add_column(at, SCORE_PASSED, pa.array(passed, pa.bool_()))


def carry_outcome(rewritten: pa.Table, before: pa.Table, reselected: bool) -> pa.Table:
    """An until-run's outcome kept through a catalog rewrite (`promptreel score` on its run
    dir; the same rows in the same order): `score_passed`, and `selected` unless a new
    selection (--keep / --min-score) was asked for."""
    if SCORE_PASSED not in before.column_names or SELECTED not in rewritten.column_names:
        return rewritten
    at = rewritten.schema.get_field_index(SELECTED)
    if not reselected:
        rewritten = rewritten.set_column(at, SELECTED, before[SELECTED])
    return rewritten.add_column(at, SCORE_PASSED, before[SCORE_PASSED])
