"""The scoring stage: scorers run on finished clips in their own Ray actor, beside rendering.

Design (issue 17): a clip is scored as it is stored (read back from the run dir and
decoded), so a score computed during the run, by `promptreel score` later, or by anyone
with the clip agree. The driver queues each clip as its ledger row arrives (`add`) and
feeds a scoring actor (its own CPUs/GPUs, `--score-batch-size` clips per call, two calls
in flight) from the render loop's tick (`pump`): render actors never wait on it. Each
scorer has its own ledger (_state/scores/<name>/, the render ledger's format), so a kill
loses at most the unflushed scores, and a resume scores exactly the ok clips whose
current score (this scorer id, this clip's sha256) is missing.
"""

from __future__ import annotations

import os
from collections import deque
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ScoreSettings
from pipeline.rundir.jobjson import SCORERS, read_job
from pipeline.rundir.layout import RunDir
from pipeline.rundir.ledger import Ledger
from pipeline.schema import SCORE_LEDGER_SCHEMA
from pipeline.score.base import ScoreError
from pipeline.score.resolve import ResolvedScorer, resolve_scorer
from pipeline.score.until import Until, parse_until

IN_FLIGHT = 2  # scoring calls per actor: one scoring, one reading its clips
# The scoring actor's CPU priority below the render actors': Linux's SCHED_IDLE (it runs
# when a core is otherwise idle), else nice +10. On shared cores a render never waits for
# a score, and scoring takes the cycles rendering leaves idle (measured: a tiny render
# keeps ~1.45 of 2 cores busy). A GPU scorer's kernels are not affected, only its CPU side.
NICENESS = 10


def yield_cpu_to_rendering() -> None:
    """Below the render actors' priority: the calling thread (the actor's, which runs its
    calls) and every thread and process it starts after (torch's pool, ffmpeg); Ray's own
    threads, started before, keep theirs, so its messages are never starved."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:  # not permitted here: the nice below still yields
            pass
    os.nice(NICENESS)


def resolve_all(settings: ScoreSettings) -> tuple[ResolvedScorer, ...]:
    """Every --score flag resolved and checked (ScoreError, exit 2, before any render)."""
    return tuple(resolve_scorer(name, location) for name, location in settings.scorers)


def until_of(config, scorers: tuple[ResolvedScorer, ...]) -> Until | None:
    """--until as an Until, checked against this command's scorers (ScoreError: exit 2)."""
    settings = config.scores
    if settings.until is None:
        return None
    until = parse_until(settings.until, settings.max_variants)
    if until.name not in {s.name for s in scorers}:
        raise ScoreError(f"--until {settings.until}: add --score {until.name} (it decides)")
    if config.variants != 1:
        raise ScoreError("--until renders up to --max-variants per row: drop --variants")
    return until


def scorer_names(run: RunDir, scorers: tuple[ResolvedScorer, ...]) -> tuple[str, ...]:
    """The scorers the run will have: those job.json records, and this command's."""
    recorded = (read_job(run) or {}).get(SCORERS) or {}
    return tuple(dict.fromkeys([*recorded, *(s.name for s in scorers)]))


def score_ledgers(run: RunDir, names, flush_interval_s: float = 30.0) -> dict[str, Ledger]:
    return {
        name: Ledger(run, flush_interval_s, run.score_ledger_dir(name), SCORE_LEDGER_SCHEMA)
        for name in names
    }


def current_scores(ledgers: dict[str, Ledger], ids: dict[str, str]) -> dict[str, pa.Table]:
    """Per scorer, its latest rows computed by the scorer id the run records now."""
    out = {}
    for name, ledger in ledgers.items():
        table = ledger.read()
        out[name] = table.filter(pc.equal(table["scorer_id"], ids.get(name, "")))
    return out


class ScoreActor:
    """Loads each scorer once; scores clips read back from the run dir."""

    def __init__(self, scorers: tuple[ResolvedScorer, ...], run: RunDir, threads: int):
        yield_cpu_to_rendering()  # before its imports and load: those yield too
        from pipeline.score import SCORERS

        device = "cpu"
        if any(SCORERS[s.name].needs_checkpoint for s in scorers):
            import torch

            torch.set_num_threads(max(1, threads))
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.run = run
        self.scorers = scorers
        self.loaded = {s.name: SCORERS[s.name].load(s.location, device) for s in scorers}

    def ready(self) -> int:
        return os.getpid()

    def score(self, clips: list[tuple]) -> list[dict]:
        """(key, clip path, prompt, sha256, scorer names) each -> one row per clip and
        named scorer."""
        rows, read = [], []
        for key, path, prompt, sha, names in clips:
            try:
                data = self.run.read_bytes(path)
                if data is None:
                    raise FileNotFoundError(f"{path} is gone")
                read.append((key, sha, data, prompt, names))
            except Exception as exc:  # noqa: BLE001 - one unreadable clip fails alone
                rows += [_row(s, key, sha, None, _error(exc)) for s in self._named(names)]
        good = []
        for (key, sha, _, prompt, names), frames in zip(read, _decoded([r[2] for r in read])):
            if isinstance(frames, Exception):
                rows += [_row(s, key, sha, None, _error(frames)) for s in self._named(names)]
            else:
                good.append((key, sha, frames, prompt, names))
        for scorer in self.scorers:
            rows += self._score_one(scorer, [g for g in good if scorer.name in g[4]])
        return rows

    def _named(self, names) -> list[ResolvedScorer]:
        return [s for s in self.scorers if s.name in names]

    def _score_one(self, scorer: ResolvedScorer, good: list) -> list[dict]:
        """One clip per scorer call: a score is then a pure function of the clip (a
        batch of other clips could move its last bits), and a failure names its clip."""
        loaded, rows = self.loaded[scorer.name], []
        for key, sha, frames, prompt, _ in good:
            try:
                value = loaded.score_batch([(frames, prompt)])[0]
                rows.append(_row(scorer, key, sha, value, ""))
            except Exception as exc:  # noqa: BLE001 - this clip's score is missing
                rows.append(_row(scorer, key, sha, None, _error(exc)))
        return rows


def _decoded(clips: list[bytes]) -> list:
    """Frames of each clip, or the exception that one alone raised: all in one ffmpeg
    process, and only when that fails each alone, so a bad clip fails by itself."""
    from pipeline.outputs.encode import decode_clip, decode_clips

    if not clips:
        return []
    try:
        return decode_clips(clips)
    except Exception:  # noqa: BLE001 - which clip: decoded alone below
        pass
    decoded = []
    for data in clips:
        try:
            decoded.append(decode_clip(data))
        except Exception as exc:  # noqa: BLE001 - one undecodable clip fails alone
            decoded.append(exc)
    return decoded


def _row(scorer: ResolvedScorer, key, sha, value, error: str) -> dict:
    finite = value is not None and np.isfinite(value)
    return {
        "scorer": scorer.name,
        "key": key,
        "value": float(value) if finite else None,
        "error": error if finite or error else f"not a finite score: {value}",
        "scorer_id": scorer.scorer_id,
        "sha256": sha,
        "scored_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"[:500]


def catalog_scores(run: RunDir, run_scorers: dict | None) -> dict[str, pa.Table]:
    """Per scorer the run has (job.json), its current rows: the catalog's score columns."""
    if not run_scorers:
        return {}
    ids = {name: info["scorer_id"] for name, info in run_scorers.items()}
    return current_scores(score_ledgers(run, list(run_scorers)), ids)


class ScoreStage:
    """Queue of clips to score, one scoring actor, the scorers' ledgers (driver side)."""

    @classmethod
    def for_job(cls, config, scorers, run: RunDir, plan, finished: pa.Table, faults, results):
        """The stage of a render job (None without --score), its queue holding the clips
        rendered earlier that lack a score (a resume, or a scorer added to a finished run);
        `results`: the job's render ledger (flushed before the test-only score pause)."""
        if not scorers:
            return None
        from pipeline.outputs.encode import clip_extension

        prompts = dict(zip(plan.items["key"].to_pylist(), plan.items["prompt"].to_pylist()))
        ext = clip_extension(config.encode.format)
        stage = cls(config.scores, scorers, run, ext, config.flush_interval_s, prompts, faults)
        stage.results = results
        stage.add(stage.missing(finished))
        return stage

    def __init__(self, settings, scorers, run: RunDir, ext, flush_interval_s, prompts, faults=None):
        self.settings = settings
        self.scorers = scorers
        self.run = run
        self.ext = ext
        self.prompts = prompts  # key -> prompt (what the clip scorer compares with)
        self.ledgers = score_ledgers(run, [s.name for s in scorers], flush_interval_s)
        self.queue: deque = deque()
        self.in_flight: dict = {}  # ObjectRef -> clips
        self.actor = None
        self.scored = 0
        self.lost = 0  # clips whose scoring call failed as a whole (scored next run)
        self.last_error = ""
        self.faults = faults  # test-only: `pause:score` blocks once the first scores are saved
        self.results = None  # the render ledger, flushed before that pause

    def missing(self, results: pa.Table) -> list[tuple]:
        """Ok clips of `results` (ledger rows) lacking a current score, each with the names
        of the scorers it lacks (a scorer added later never re-scores the others)."""
        ok = results.filter(pc.equal(results["status"], "ok"))
        ids = {s.name: s.scorer_id for s in self.scorers}
        have = {
            name: set(zip(table["key"].to_pylist(), table["sha256"].to_pylist()))
            for name, table in current_scores(self.ledgers, ids).items()
        }
        todo = []
        for key, sha in zip(ok["key"].to_pylist(), ok["sha256"].to_pylist()):
            names = tuple(name for name in ids if (key, sha) not in have[name])
            if names and key in self.prompts:
                todo.append((key, self._path(key), self.prompts[key], sha, names))
        return todo

    def add(self, clips) -> None:
        self.queue.extend(clips)

    def add_results(self, rows: list[dict]) -> None:
        """Final ledger rows from the render loop: the ok ones are queued for every scorer."""
        names = tuple(s.name for s in self.scorers)
        self.add(
            (r["key"], self._path(r["key"]), self.prompts[r["key"]], r["sha256"], names)
            for r in rows
            if r["status"] == "ok" and r["key"] in self.prompts
        )

    def _path(self, key: str) -> str:
        return self.run.clip_path(key, self.ext)

    def score_only(self, cluster, stop) -> None:
        """Nothing to render, clips to score: Ray for the scoring actor alone."""
        from pipeline.driver.executor import init_ray

        init_ray(cluster)
        try:
            self.finish(stopping=lambda: stop.stopping)
        finally:
            self.close()

    def pump(self) -> None:
        """Collect finished calls, start new ones; never blocks."""
        import ray

        if self.in_flight:
            done, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
            for ref in done:
                try:
                    rows = ray.get(ref)
                except ray.exceptions.RayError as exc:  # a scorer that cannot load, or died
                    rows = self._failed(self.in_flight[ref], exc)
                self._collect(ref, rows)
        if self.queue:
            self.start()
        while self.queue and len(self.in_flight) < IN_FLIGHT:
            size = max(1, self.settings.batch_size)
            clips = [self.queue.popleft() for _ in range(min(size, len(self.queue)))]
            self.in_flight[self.actor.score.remote(clips)] = clips

    def finish(self, on_tick=None, stopping=lambda: False) -> None:
        """Score everything queued (unless a stop is asked: the rest waits for a resume)."""
        import ray

        while (self.queue or self.in_flight) and not stopping():
            self.pump()
            if self.in_flight:
                ray.wait(list(self.in_flight), num_returns=1, timeout=1.0)
            if on_tick is not None:
                on_tick()
        self.pump()
        self.flush()

    def _failed(self, clips, exc: Exception) -> list[dict]:
        """A call lost with its actor (or a scorer that cannot load there): nothing is
        recorded, so the next run (or `promptreel score`) scores these clips again; a
        dead actor is replaced on the next call."""
        import ray

        self.lost += len(clips)
        self.last_error = _error(exc)
        if isinstance(exc, ray.exceptions.RayActorError):
            self.close()
        return []

    def _collect(self, ref, rows: list[dict]) -> None:
        del self.in_flight[ref]
        for name, ledger in self.ledgers.items():
            ledger.append([_ledger_row(r) for r in rows if r["scorer"] == name])
        first = self.scored == 0 and rows
        self.scored += len({r["key"] for r in rows})
        if first and self.faults is not None:
            self.flush()
            if self.results is not None:
                self.results.flush()  # and every clip rendered so far: nothing to redo
            self.faults.pause("score")  # test-only: a kill with some scores saved

    def start(self) -> None:
        """Start the scoring actor unless it runs. A render job calls this as its render
        actors start: the scorer's imports and load (seconds of CPU) then run while the
        render actors load, not beside the rendering they would slow down."""
        if self.actor is None:
            self.actor = self._start()

    def _start(self):
        import ray

        actor_class = ray.remote(ScoreActor).options(
            num_cpus=self.settings.cpus, num_gpus=self.settings.gpus, max_concurrency=1
        )
        return actor_class.remote(self.scorers, self.run, int(self.settings.cpus))

    def flush(self) -> None:
        for ledger in self.ledgers.values():
            ledger.flush()

    def close(self) -> None:
        from pipeline.driver.executor import kill_actor

        self.flush()
        if self.actor is not None:
            kill_actor(self.actor)
            self.actor = None


def _ledger_row(row: dict) -> dict:
    return {name: row[name] for name in SCORE_LEDGER_SCHEMA.names}
