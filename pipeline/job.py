"""One render job from manifest to catalog: the steps in order, each in its own module.

validate -> plan -> claim the run dir (job.json, lock) -> skip finished keys (ledger)
-> render on Ray -> catalog.parquet, summary.json, report.html
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import signal
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
from pipeline.storage import TMP_PREFIX, RunDir, check_run_dir_writable


@dataclass(frozen=True)
class JobResult:
    counts: dict
    wall_s: float
    rendered: int
    run: RunDir

    @property
    def exit_code(self) -> int:
        return 3 if self.counts.get("failed") else 0


def load_and_plan(config: RunConfig) -> tuple[ValidatedManifest, Plan]:
    resolve_model(config.render.model)  # a bad --model: one clear error, not one per row
    manifest = load(
        config.manifest,
        config.storage_options,
        default_model=config.render.model,
        strict_seeds=config.strict_seeds,
    )
    return manifest, make_plan(manifest, config.render.batch_size)


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
    manifest, plan = load_and_plan(config)
    run = RunDir(config.out, config.storage_options)
    check_run_dir_writable(run)  # bad credentials / missing bucket: exit 2, nothing rendered
    settings = config.render
    record = pins.run_record([settings.model, *pc.unique(plan.items["model"]).to_pylist()])
    claim_run_dir(
        run, job_fingerprint(settings, config.encode), record, config.allow_version_change
    )
    lock = DriverLock(run, ttl_s=max(120.0, 4 * config.flush_interval_s))
    lock.acquire()
    ledger = Ledger(run, config.flush_interval_s)
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
    rendered = 0
    try:
        finished = ledger.compact()
        remove_temp_files(run)
        todo = pending_keys(plan, finished, config.retry_failed)
        _write_plan_keys(run, plan)
        if len(todo):
            rendered = _render(config, run, plan, todo, ledger, lock, progress, faults)
        ledger.flush()  # the catalog and the sweep below read what the ledger holds
        results = with_current_uris(run, ledger.read(), clip_extension(config.encode.format))
        sweep_clips(run, results.filter(pc.equal(results["status"], "ok"))["key"])
        catalog = catalog_mod.build_catalog(plan.rows, results, manifest.passthrough)
        catalog = with_planned_batches(catalog, plan.items, plan.composition)
        catalog_mod.write_catalog(run, catalog)
        counts = catalog_mod.status_counts(catalog)
        wall_s = time.time() - started
        summary = _summary(config, plan, counts, rendered, wall_s)
        catalog_mod.write_summary(run, summary)
        write_report(run, catalog, summary)  # the final one, after the catalog
    finally:
        ledger.flush()
        lock.release()
        signal.signal(signal.SIGTERM, previous_sigterm)
    return JobResult(counts=counts, wall_s=wall_s, rendered=rendered, run=run)


def _render(config, run, plan, todo, ledger, lock, progress, faults) -> int:
    from pipeline.executor import Dispatcher, init_ray
    from pipeline.retry import RetryBook
    from pipeline.worker import WorkerSpec

    started = time.time()
    init_ray(config.cluster)
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
    for model in pc.unique(pending_models).to_pylist():
        spec = WorkerSpec(
            model=resolve_model(model).pinned_spec,  # every actor, every node: this commit
            render=config.render,
            encode=config.encode,
            run=run,
            encode_workers=config.cluster.encode_workers,
            faults=faults,
            qc=config.qc,
        )
        dispatcher = Dispatcher(config.cluster, book, on_final, on_tick)
        dispatcher.run(spec, plan.batches(todo, model=model))
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


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
