"""What each CLI command does and prints. Exit codes are the design's: 0, 2, 3, 4."""

from __future__ import annotations

import json
import sys
from collections import Counter

from pipeline.cli.run_config import config_from_args
from pipeline.models.describe import cmd_models  # noqa: F401 - `promptreel models`


def _print_warnings(manifest) -> None:
    for warning in manifest.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_validate(args) -> int:
    from pipeline.cli.run_config import media_limits
    from pipeline.plan.manifest import load
    from pipeline.plan.media_rows import MediaOptions

    media = MediaOptions(
        media_limits(args), args.resize, storage_options=args.storage_options, lora=args.lora
    )
    manifest = load(
        args.manifest,
        args.storage_options,
        media,
        default_model=args.model,
        strict_seeds=args.strict_seeds,
    )
    _print_warnings(manifest)
    print(
        f"ok: {manifest.table.num_rows} rows valid"
        + (f", {len(manifest.warnings)} warning(s)" if manifest.warnings else "")
    )
    return 0


def cmd_plan(args) -> int:
    from pipeline.driver.job import load_and_plan
    from pipeline.driver.sizing import with_actor_count
    from pipeline.plan.planner import pending_keys
    from pipeline.rundir.layout import RunDir
    from pipeline.rundir.ledger import Ledger

    config = config_from_args(args)
    manifest, plan = load_and_plan(config)
    _print_warnings(manifest)
    config = with_actor_count(config, manifest.table["model"].unique().to_pylist())
    todo, finished = plan.items["key"], None
    if args.out:
        finished = Ledger(RunDir(args.out, args.storage_options)).read(
            columns=("status", "render_s")
        )
        todo = pending_keys(plan, finished, False)
    buckets = plan.pending_buckets(todo)
    batches = sum(bucket["batches"] for bucket in buckets)
    print(
        f"rows: {plan.rows.num_rows}  distinct items: {plan.items.num_rows}  "
        f"done: {plan.items.num_rows - len(todo)}  pending: {len(todo)}  "
        f"batches of {config.render.batch_size}: {batches}"
    )
    for b in buckets:
        adapters = ", LoRA " + _adapter_names(b["lora"]) if b.get("lora") else ""
        print(
            f"  {b['model']}  {b['width']}x{b['height']}x{b['num_frames']}  "
            f"{b['num_inference_steps']} steps, guidance {b['guidance_scale']:g}{adapters}: "
            f"{b['items']} pending in {b['batches']} batches"
        )
    seconds = _print_estimate(args.seconds_per_item, finished, len(todo), config.cluster)
    if config.deadline is not None:
        from pipeline.driver.stopping import describe_fit

        print(describe_fit(config.deadline, seconds, config.cluster.actors, len(todo)))
    print("nothing written (dry run)")
    return 0


def _adapter_names(cell: str) -> str:
    """A bucket's adapter set as `name@scale, ...` (file names: the key holds the hashes)."""
    import json
    import posixpath

    return ", ".join(f"{posixpath.basename(a['uri'])}@{a['scale']:g}" for a in json.loads(cell))


def _print_estimate(seconds, finished, pending: int, cluster) -> float | None:
    """GPU-hours the pending items need: at --seconds-per-item, else at the mean render
    time per item measured in the run dir's ledger; x GPUs per actor (1 on CPU)."""
    import pyarrow.compute as pc

    source = "given"
    if seconds is None and finished is not None:
        ok = finished.filter(pc.equal(finished["status"], "ok"))
        seconds = pc.mean(ok["render_s"]).as_py() if ok.num_rows else None
        source = f"measured over {ok.num_rows} finished items"
    if not seconds:
        return None
    gpus = cluster.gpus_per_actor or 1.0
    hours = pending * seconds * gpus / 3600
    print(
        f"estimate: {hours:.2f} GPU-hours at {seconds:.3g} s/item ({source}) and {gpus:g} "
        f"GPU per actor; about {hours / gpus / cluster.actors:.2f} h with --actors {cluster.actors}"
    )
    return seconds


def cmd_render(args) -> int:
    from pipeline.driver.job import run_job

    config = config_from_args(args)
    result = run_job(config, progress=ProgressBar() if config.progress else None)
    _print_result(result)
    return result.exit_code


class ProgressBar:
    """tqdm bar with rate and ETA, advanced as final rows arrive; ok/failed as postfix."""

    def __init__(self):
        self.bar = None
        self.counts = Counter()

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="clip", dynamic_ncols=True, file=sys.stderr)

    def advance(self, rows) -> None:
        self.counts.update(row["status"] for row in rows)
        self.bar.update(len(rows))
        self.bar.set_postfix(ok=self.counts["ok"], failed=self.counts["failed"], refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_result(result) -> None:
    run = result.run
    counts = result.counts
    pending = counts.get("pending", 0)
    verb = f"stopped ({result.stopped or 'early'})" if pending else "done"
    also_pending = f", {pending} pending" if pending else ""
    print(
        f"{verb} in {result.wall_s:.1f}s: {counts.get('ok', 0)} ok, "
        f"{counts.get('failed', 0)} failed{also_pending}"
        f" ({result.rendered} rendered this run)\n"
        f"  clips:   {run.uri(run.clips_dir)}\n"
        f"  catalog: {run.uri(run.catalog)}\n"
        f"  summary: {run.uri(run.summary)}\n"
        f"  report:  {run.uri(run.report)}"
    )
    if pending:
        print(
            f"{pending} item(s) pending (exit 4): run the same command to resume", file=sys.stderr
        )
    if counts.get("failed"):
        print(
            "some items failed: see the `error` column of the catalog; "
            "`--retry-failed` renders them again",
            file=sys.stderr,
        )


def cmd_status(args) -> int:
    from pipeline.rundir.layout import RunDir
    from pipeline.rundir.status import format_status, run_status, watch

    run = RunDir(args.run, args.storage_options)
    if args.watch:
        try:
            report = watch(run, args.run, args.interval, args.refreshes)
        except KeyboardInterrupt:
            return 0
        return 3 if report["counts"]["failed"] else 0
    report = run_status(run)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(format_status(args.run, report))
    return 3 if report["counts"]["failed"] else 0


def cmd_verify(args) -> int:
    from pipeline.driver.verify import verify_run
    from pipeline.rundir.layout import RunDir

    problems, checked, sampled = verify_run(RunDir(args.run, args.storage_options), args.sample)
    for problem in problems:
        print(f"MISMATCH {problem}")
    print(
        f"checked {checked} clip(s) against sha256; re-rendered {sampled} and compared "
        f"frames_sha256: {len(problems)} problem(s)"
    )
    return 3 if problems else 0


def cmd_score(args) -> int:
    from pipeline.cli.scoring import score_settings
    from pipeline.config import ClusterSettings
    from pipeline.driver.score_run import score_run
    from pipeline.rundir.layout import RunDir

    result = score_run(
        RunDir(args.run, args.storage_options), score_settings(args), ClusterSettings()
    )
    print(
        f"scored {result.scored} clip(s)"
        + (f", {result.lost} lost with their scoring actor (run again)" if result.lost else "")
        + ("; catalog and report rewritten" if result.rewritten else "; nothing changed")
    )
    return 0


def cmd_export(args) -> int:
    from pipeline.export.cli import cmd_export as export

    return export(args)


def cmd_demo(args) -> int:
    from pipeline.cli.demo import demo_manifest_path

    argv = ["render", str(demo_manifest_path()), "--out", args.out]
    argv += ["--actors", str(args.actors)] if args.actors else []
    from pipeline.cli.parser import build_parser

    render_args = build_parser().parse_args(argv)
    print(f"rendering {render_args.manifest} with the embedded tiny model on a local Ray")
    return cmd_render(render_args)
