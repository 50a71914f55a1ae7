"""One render job from manifest to catalog. The steps flow one way:

read + validate -> claim the run dir (job.json) -> plan (keys) + lock + ledger -> nothing
pending, or a deadline no batch can meet? write the catalog and stop, without Ray -> start
Ray and actors (while the batches are composed) -> render -> catalog.parquet, summary.json,
report.html
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.actor.faults import Faults
from pipeline.arrow_io import parquet_bytes
from pipeline.config import RunConfig
from pipeline.driver.rounds import Rounds, in_play, with_outcome
from pipeline.driver.scoring import (
    ScoreStage,
    catalog_scores,
    resolve_all,
    scorer_names,
    until_of,
)
from pipeline.driver.sizing import with_actor_count
from pipeline.driver.startup import StartedUp, start_up
from pipeline.driver.stopping import StopControl, prior_batch_seconds
from pipeline.models import resolve_model
from pipeline.models.lanes import check_lanes, key_text
from pipeline.outputs.encode import check_sound, clip_extension
from pipeline.plan.manifest import ValidatedManifest, load
from pipeline.plan.media_rows import MediaHashes, MediaOptions
from pipeline.plan.planner import Plan, make_plan, pending_keys
from pipeline.report import write_report
from pipeline.report.live import LiveReport
from pipeline.rundir import catalog as catalog_mod
from pipeline.rundir.jobjson import claim_job, record_scorers
from pipeline.rundir.layout import RunDir, check_run_dir_writable
from pipeline.rundir.ledger import Ledger
from pipeline.rundir.lock import DriverLock
from pipeline.score.selection import Selection, check_selection
from pipeline.score.until import Until


@dataclass(frozen=True)
class JobResult:
    counts: dict
    wall_s: float
    rendered: int
    run: RunDir
    stopped: str | None = None  # "deadline" | "SIGINT" | "SIGTERM" when stopped early
    started_ray: bool = False  # False when nothing was pending

    @property
    def exit_code(self) -> int:
        if self.counts.get("pending"):
            return 4  # stopped with items pending: the same command resumes
        return 3 if self.counts.get("failed") else 0


def load_and_plan(config: RunConfig) -> tuple[ValidatedManifest, Plan]:
    """Validate and plan (`promptreel plan`): read-only, but an existing run dir's media hash
    cache spares reading unchanged images."""
    hashes = _media_hashes(RunDir(config.out, config.storage_options)) if config.out else None
    manifest = load_manifest(config, hashes)
    return manifest, make_plan(
        manifest, config.render.batch_size, config.variants, key_text(config.render)
    )


def load_manifest(config: RunConfig, hashes: MediaHashes | None = None) -> ValidatedManifest:
    """Read and validate (every problem by row, exit 2); `hashes`: see MediaHashes."""
    resolve_model(config.render.model)  # a bad --model: one clear error, not one per row
    media = MediaOptions(
        config.media, config.resize, "", config.storage_options, hashes, lora=config.lora
    )
    manifest = load(
        config.manifest,
        config.storage_options,
        media,
        default_model=config.render.model,
        strict_seeds=config.strict_seeds,
    )
    specs = pc.unique(manifest.table["model"]).to_pylist()
    families = {resolve_model(spec).family for spec in specs}
    check_lanes(config.render, families)
    check_sound(config.encode, families)  # sound the format cannot carry: exit 2 here
    return manifest


def _media_hashes(run: RunDir) -> MediaHashes:
    """The run dir's media hash cache (empty for a new run dir or an unreadable cache)."""
    try:
        text = run.read_bytes(run.media_hashes)
        return MediaHashes.from_json(text.decode()) if text else MediaHashes()
    except (OSError, ValueError):
        return MediaHashes()


@dataclass(frozen=True)
class _Job:
    """What every step of one render job shares."""

    config: RunConfig
    run: RunDir
    faults: Faults
    manifest: ValidatedManifest
    stop: StopControl
    lock: DriverLock
    ledger: Ledger
    started: float
    scorers: tuple = ()  # this command's --score flags, resolved (driver/scoring.py)
    run_scorers: dict | None = None  # every scorer the run has (job.json), for the catalog
    until: Until | None = None  # render until good (driver/rounds.py)


def run_job(config: RunConfig, progress=None) -> JobResult:
    """Render every pending item of the manifest into config.out; safe to re-run."""
    started = time.time()
    faults = Faults.parse(config.faults)  # a bad flag fails before any work
    run = RunDir(config.out, config.storage_options)
    # Before anything is started: a bad manifest or run dir exits 2 at once.
    hashes = _media_hashes(run)
    manifest = load_manifest(config, hashes)
    scorers = resolve_all(config.scores)  # a wrong scorer checkpoint: exit 2 here
    check_selection(Selection.of(config.scores), scorer_names(run, scorers))
    until = until_of(config, scorers)
    check_run_dir_writable(run)  # bad credentials / missing bucket: exit 2, nothing rendered
    models = pc.unique(manifest.table["model"]).to_pylist()
    claim_job(run, config, models)
    config = with_actor_count(config, models)  # --actors auto: never changes pixels
    run_scorers = record_scorers(run, {s.name: s.describe() for s in scorers})
    if hashes.changed:
        run.write(run.media_hashes, hashes.to_json().encode())
    job = _Job(
        config,
        run,
        faults,
        manifest,
        StopControl(config.deadline, config.stop_grace_s),
        DriverLock(run, ttl_s=max(120.0, 4 * config.flush_interval_s)),
        Ledger(run, config.flush_interval_s),
        started,
        scorers,
        run_scorers,
        until,
    )
    job.stop.install()  # until armed (Ray up), a signal interrupts as Ctrl-C: exit 130
    startup: StartedUp | None = None
    rendered = 0
    try:
        variants = until.max_variants if until else config.variants  # until: all planned
        plan = make_plan(manifest, config.render.batch_size, variants, key_text(config.render))
        job.lock.acquire()
        finished = job.ledger.compact()
        todo = pending_keys(plan, finished, config.retry_failed)
        if until is None:  # --until: each round writes the variants in play (rounds.py)
            run.write(run.plan_keys, parquet_bytes(plan.items.select(["key"])))
        job.stop.prior = prior_batch_seconds(
            finished, config.render.batch_size, config.cluster.batches_in_flight
        )
        stage = ScoreStage.for_job(config, scorers, run, plan, finished, faults, job.ledger)
        rounds = _rounds(until, plan, job, stage, finished, config.retry_failed)
        first = rounds.next(todo) if rounds else todo
        # Nothing pending, or a deadline no batch can meet: no Ray at all, to the catalog.
        if (len(first) or (rounds and stage.queue)) and job.stop.admit(actor_load=0):
            job.faults.pause("start")  # test-only: planned and claimed, nothing started yet
            startup = start_up(config, run, faults, job.stop, plan, todo)
            rendered = _render(job, plan, todo, first, progress, startup, stage, rounds)
        elif stage is not None and stage.queue and not job.stop.stopping:
            stage.score_only(config.cluster, job.stop)  # clips rendered earlier, unscored
        job.ledger.flush()  # the catalog and the sweep below read what the ledger holds
        timings = startup.timings() if startup else None  # None: Ray never started
        counts, stopped = _write_outputs(job, plan, rendered, timings, rounds)
    except KeyboardInterrupt as exc:
        job.stop.reraise(exc)
    finally:
        if startup is not None:
            startup.early.release(shutdown=False)  # actors nobody took
        job.ledger.flush()
        job.lock.release()
        job.stop.restore()
    return JobResult(
        counts=counts,
        wall_s=time.time() - started,
        rendered=rendered,
        run=run,
        stopped=stopped,
        started_ray=startup is not None,
    )


def _write_outputs(job: _Job, plan: Plan, rendered: int, timings: dict | None, rounds) -> tuple:
    """The sweep, catalog.parquet, summary.json and report.html, from the ledger."""
    config, run = job.config, job.run
    results = with_current_uris(run, job.ledger.read(), clip_extension(config.encode.format))
    job.faults.pause("sweep")  # test-only: a kill with the ledger complete and nothing swept
    run.sweep(results.filter(pc.equal(results["status"], "ok"))["key"])
    scores = catalog_scores(run, job.run_scorers)
    selection = Selection.of(config.scores)
    state = rounds.read() if rounds else None
    rows = in_play(plan.rows, state) if state else plan.rows
    catalog = catalog_mod.build_catalog(rows, results, job.manifest.passthrough, scores, selection)
    if state is not None:
        catalog = with_outcome(catalog, state)
    catalog = plan.with_planned_batches(catalog)
    catalog_mod.write_catalog(run, catalog)
    counts = catalog_mod.status_counts(catalog)
    stopped = job.stop.reason if counts.get("pending") else None
    summary = _summary(config, plan, counts, rendered, time.time() - job.started)
    summary["stopped"] = stopped
    # startup: the two overlapped parts (driver/startup.py), wall seconds each
    catalog_mod.write_summary(run, {**summary, "startup": timings})
    write_report(run, catalog, summary)  # the final one, after the catalog
    return counts, stopped


def with_current_uris(run: RunDir, results: pa.Table, ext: str) -> pa.Table:
    """Clip URIs from where the run dir is now, so a moved or copied run dir still works."""
    ok = results["status"].to_pylist()
    uris = [
        run.uri(run.clip_path(key, ext)) if status == "ok" else None
        for key, status in zip(results["key"].to_pylist(), ok)
    ]
    index = results.schema.get_field_index("uri")
    return results.set_column(index, "uri", pa.array(uris, pa.string()))


def _rounds(until, plan, job, stage, finished: pa.Table, retry_failed: bool) -> Rounds | None:
    """--until's rounds; with --retry-failed, the variants that had failed render again."""
    if until is None:
        return None
    retry = frozenset()
    if retry_failed:
        failed = finished.filter(pc.equal(finished["status"], "failed"))
        retry = frozenset(failed["key"].to_pylist())
    return Rounds(until, plan.rows, job.ledger, stage, job.run, retry)


def _render(job: _Job, plan: Plan, todo, now, progress, startup: StartedUp, stage, rounds) -> int:
    """Render `now` (the pending keys, or with `rounds` (--until) the first round's),
    then round by round: each round's scores, what the next needs of `todo`, until no row
    needs another variant."""
    from pipeline.driver.executor import Dispatcher
    from pipeline.driver.retry import RetryBook

    config, ledger, lock, stop = job.config, job.ledger, job.lock, job.stop
    started = time.time()
    if progress is not None:
        progress.start(len(todo))
    book = RetryBook(config.max_retries)
    rendered = 0
    last_beat = time.monotonic()

    def on_final(rows):
        nonlocal rendered
        rendered += len(rows)
        if ledger.append(rows):
            lock.heartbeat()
        if progress is not None:
            progress.advance(rows)
        if stage is not None:
            stage.add_results(rows)

    def on_tick():
        nonlocal last_beat
        if ledger.append([]) or time.monotonic() - last_beat > lock.ttl_s / 4:
            lock.heartbeat()
            last_beat = time.monotonic()
        live.tick()  # report.html every config.report_interval_s, from the ledger
        if stage is not None:
            stage.pump()  # scoring beside rendering: never waits

    def report_context(counts):
        return _summary(config, plan, counts, rendered, time.time() - started)

    live = LiveReport(job.run, plan.rows, ledger, report_context, config.report_interval_s)

    early = startup.early
    if stage is not None:
        stage.start()  # loads beside the render actors' start (the cores they leave idle)
    actors = early.take_actors()  # kept from model to model: each loads the next one
    try:
        while True:
            for model in plan.pending_models(now, config.render.model):
                if stop.stopping:
                    break
                dispatcher = Dispatcher(config.cluster, book, on_final, on_tick, gate=stop)
                batches = plan.batches(now, model=model)
                most = plan.batch_count(now, model=model)
                try:
                    actors = dispatcher.run(early.spec_for(model), batches, actors, most)
                finally:
                    early.actors_started += dispatcher.actors_started
                    early.actors_warm += dispatcher.actors_warm
            if rounds is None or stop.stopping:
                break
            stage.finish(on_tick, lambda: stop.stopping)  # this round's scores decide
            now = rounds.next(todo)
            if not len(now):
                break
        # Rendering done: their CPUs go to scoring; without scoring they may stay warm.
        early.release(shutdown=False, also=actors, keep=stage is None)
        actors = []
        if stage is not None:
            stage.finish(on_tick, lambda: stop.stopping)
    finally:
        early.release(shutdown=False, also=actors)
        if stage is not None:
            stage.close()
        live.close()  # a live rewrite still running must not land after the final report
    if progress is not None:
        progress.close()
    return rendered


def _summary(config: RunConfig, plan: Plan, counts: dict, rendered: int, wall_s: float) -> dict:
    return {
        "counts": counts,
        "rows": plan.rows.num_rows,
        "items": plan.items.num_rows,
        "rendered_this_run": rendered,
        "actors": config.cluster.actors,  # the count asked for, or what --actors auto chose
        "wall_s": round(wall_s, 3),
        "items_per_s": round(rendered / wall_s, 3) if wall_s else None,
        "manifest": config.manifest,
        "model": config.render.model,
        "render": asdict(config.render),
        "encode": asdict(config.encode),
        "qc": config.qc,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # From package metadata: importing torch here would cost the driver seconds.
        "versions": {
            "python": platform.python_version(),
            **{name: _version(name) for name in ("torch", "diffusers", "ray", "pyarrow")},
        },
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
