"""One render job from manifest to catalog: the steps in order, each in its own module.

validate -> plan -> claim the run dir (job.json, lock) -> skip finished keys (ledger)
-> render on Ray -> catalog.parquet, summary.json, report.html
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import catalog as catalog_mod
from pipeline import pins
from pipeline.arrow_io import parquet_bytes
from pipeline.composition import with_planned_batches
from pipeline.config import RunConfig
from pipeline.errors import ConfigError
from pipeline.faults import Faults
from pipeline.ledger import Ledger
from pipeline.lock import DriverLock
from pipeline.manifest import ValidatedManifest, load
from pipeline.models import resolve_model
from pipeline.outputs.encode import clip_extension
from pipeline.outputs.thumbnail import THUMB_DIR
from pipeline.plan import Plan, fingerprint_differences, job_fingerprint, make_plan
from pipeline.report import write_report
from pipeline.report.live import LiveReport
from pipeline.startup import start_up
from pipeline.stopping import StopControl, prior_batch_seconds
from pipeline.storage import TMP_PREFIX, RunDir, check_run_dir_writable


@dataclass(frozen=True)
class JobResult:
    counts: dict
    wall_s: float
    rendered: int
    run: RunDir
    stopped: str | None = None  # "deadline" | "SIGINT" | "SIGTERM" when stopped early

    @property
    def exit_code(self) -> int:
        if self.counts.get("pending"):
            return 4  # stopped with items pending: the same command resumes
        return 3 if self.counts.get("failed") else 0


def load_and_plan(config: RunConfig) -> tuple[ValidatedManifest, Plan]:
    manifest = load_manifest(config)
    return manifest, make_plan(manifest, config.render.batch_size)


def load_manifest(config: RunConfig) -> ValidatedManifest:
    """Read and validate (every problem by row, exit 2)."""
    resolve_model(config.render.model)  # a bad --model: one clear error, not one per row
    return load(
        config.manifest,
        config.storage_options,
        default_model=config.render.model,
        strict_seeds=config.strict_seeds,
    )


def claim_run_dir(
    run: RunDir, fingerprint: dict, record: dict | None = None, allow_version_change=False
) -> None:
    """Record the job in job.json, or refuse a run dir that belongs to another job.
    `record` (hub commits, library versions) has its own resume rules: see pipeline/pins.py."""
    recorded = run.read_bytes(run.job_json)
    if recorded is None:
        job = {**fingerprint, **(record or {})}
        run.write(run.job_json, json.dumps(job, indent=2, sort_keys=True).encode())
        return
    recorded = json.loads(recorded)
    pins.check_hub_pins(run.url, recorded, record or {})
    differences = fingerprint_differences(pins.without_record(recorded), fingerprint)
    if differences:
        raise ConfigError(
            f"{run.url} holds a different job; refusing to mix its clips with this one:\n  "
            + "\n  ".join(differences)
            + "\nUse another --out, or the run's original settings."
        )
    updated = pins.resumed_record(run.url, recorded, record or {}, allow_version_change)
    if updated != recorded:
        run.write(run.job_json, json.dumps(updated, indent=2, sort_keys=True).encode())


def pending_keys(plan: Plan, finished: pa.Table, retry_failed: bool) -> pa.Array:
    """Plan keys with no final result yet (and failed ones, with --retry-failed)."""
    done = finished if not retry_failed else finished.filter(pc.equal(finished["status"], "ok"))
    keep = pc.invert(pc.is_in(plan.items["key"], value_set=done["key"]))
    return plan.items["key"].filter(keep)


def sweep_clips(run: RunDir, keep_keys: pa.Array) -> int:
    """Remove temp files, clips and thumbnails no ledger row refers to (left by a crash)."""
    fs = run.fs
    paths = []
    for folder in ("clips", THUMB_DIR):
        try:
            paths += fs.find(run.path(folder))
        except FileNotFoundError:
            pass
    keep = set(keep_keys.to_pylist())
    removed = 0
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        if name.startswith(TMP_PREFIX) or name.split(".", 1)[0] not in keep:
            fs.rm_file(path)
            removed += 1
    return removed


def remove_temp_files(run: RunDir) -> None:
    """A kill inside an atomic write of job.json, the catalog or the summary leaves a temp."""
    for folder in (run.root, run.path("_state")):
        try:
            names = run.fs.ls(folder, detail=False)
        except FileNotFoundError:
            continue
        for path in names:
            if path.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
                run.fs.rm_file(path)


def with_current_uris(run: RunDir, results: pa.Table, ext: str) -> pa.Table:
    """Clip URIs from where the run dir is now, so a moved or copied run dir still works."""
    ok = results["status"].to_pylist()
    uris = [
        run.uri(run.clip_path(key, ext)) if status == "ok" else None
        for key, status in zip(results["key"].to_pylist(), ok)
    ]
    index = results.schema.get_field_index("uri")
    return results.set_column(index, "uri", pa.array(uris, pa.string()))


def run_job(config: RunConfig, progress=None) -> JobResult:
    """Render every pending item of the manifest into config.out; safe to re-run."""
    started = time.time()
    faults = Faults.parse(config.faults)  # a bad flag fails before any work
    run = RunDir(config.out, config.storage_options)
    settings = config.render
    # Before Ray: a bad manifest or run dir exits 2 at once, with nothing started.
    manifest = load_manifest(config)
    check_run_dir_writable(run)  # bad credentials / missing bucket: exit 2, nothing rendered
    _claim(config, run, manifest)  # a run dir of another job: exit 2, nothing started
    stop = StopControl(config.deadline, config.stop_grace_s)
    # Ray and the actors start while another thread plans and takes the lock.
    early, (plan, lock), startup = start_up(
        config, run, faults, stop, lambda cancel: _prepare(config, run, manifest, cancel)
    )
    ledger = Ledger(run, config.flush_interval_s)
    rendered = 0
    try:
        finished = ledger.compact()
        remove_temp_files(run)
        todo = pending_keys(plan, finished, config.retry_failed)
        _write_plan_keys(run, plan)
        if not len(todo):
            early.release(shutdown=True)  # all done already: free Ray now
        else:
            stop.prior = prior_batch_seconds(
                finished, settings.batch_size, config.cluster.batches_in_flight
            )
            rendered = _render(config, run, plan, todo, ledger, lock, progress, stop, early)
        ledger.flush()  # the catalog and the sweep below read what the ledger holds
        results = with_current_uris(run, ledger.read(), clip_extension(config.encode.format))
        sweep_clips(run, results.filter(pc.equal(results["status"], "ok"))["key"])
        catalog = catalog_mod.build_catalog(plan.rows, results, manifest.passthrough)
        catalog = with_planned_batches(catalog, plan.items, plan.composition)
        catalog_mod.write_catalog(run, catalog)
        counts = catalog_mod.status_counts(catalog)
        wall_s = time.time() - started
        stopped = stop.reason if counts.get("pending") else None
        # startup: the two overlapped parts (pipeline/startup.py), wall seconds each
        summary = {**_summary(config, plan, counts, rendered, wall_s), "stopped": stopped}
        catalog_mod.write_summary(run, {**summary, "startup": startup})
        write_report(run, catalog, summary)  # the final one, after the catalog
    except KeyboardInterrupt as exc:
        stop.reraise(exc)
    finally:
        early.release(shutdown=False)  # actors nobody took
        ledger.flush()
        lock.release()
        stop.restore()
    return JobResult(counts=counts, wall_s=wall_s, rendered=rendered, run=run, stopped=stopped)


def _claim(config: RunConfig, run: RunDir, manifest: ValidatedManifest) -> None:
    """job.json: record this job, or refuse a run dir that holds another (cheap: no plan)."""
    models = [config.render.model, *pc.unique(manifest.table["model"]).to_pylist()]
    record = pins.run_record(models)
    claim_run_dir(
        run, job_fingerprint(config.render, config.encode), record, config.allow_version_change
    )


def _prepare(config: RunConfig, run: RunDir, manifest, cancel) -> tuple:
    """What needs no Ray after validation: plan, lock. Stops between steps once `cancel`
    is set (Ctrl-C during start-up)."""
    plan = make_plan(manifest, config.render.batch_size)
    cancel.check()
    lock = DriverLock(run, ttl_s=max(120.0, 4 * config.flush_interval_s))
    lock.acquire()
    return plan, lock


def _render(config, run, plan, todo, ledger, lock, progress, stop, early) -> int:
    from pipeline.executor import Dispatcher
    from pipeline.retry import RetryBook

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

    def on_tick():
        nonlocal last_beat
        if ledger.append([]) or time.monotonic() - last_beat > lock.ttl_s / 4:
            lock.heartbeat()
            last_beat = time.monotonic()
        live.tick()  # report.html every config.report_interval_s, from the ledger

    def report_context(counts):
        return _summary(config, plan, counts, rendered, time.time() - started)

    live = LiveReport(run, plan.rows, ledger, report_context, config.report_interval_s)

    pending_models = plan.items.filter(pc.is_in(plan.items["key"], value_set=todo))["model"]
    models = pc.unique(pending_models).to_pylist()
    models.sort(key=lambda model: model != config.render.model)  # the early actors' first
    try:
        for model in models:
            if stop.stopping:
                break
            dispatcher = Dispatcher(config.cluster, book, on_final, on_tick, gate=stop)
            batches = plan.batches(todo, model=model)
            dispatcher.run(early.spec_for(model), batches, actors=early.take_actors(model))
    finally:
        live.close()  # a live rewrite still running must not land after the final report
    if progress is not None:
        progress.close()
    return rendered


def _write_plan_keys(run: RunDir, plan: Plan) -> None:
    """The plan's keys, so `status` can count pending items without the manifest."""
    run.write(run.path("_state", "plan_keys.parquet"), parquet_bytes(plan.items.select(["key"])))


def _summary(config: RunConfig, plan: Plan, counts: dict, rendered: int, wall_s: float) -> dict:
    return {
        "counts": counts,
        "rows": plan.rows.num_rows,
        "items": plan.items.num_rows,
        "rendered_this_run": rendered,
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
