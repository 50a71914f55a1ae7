"""One export from start to end: open the run, plan the target's units, write them."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.export import files, hf, vbench, webdataset
from pipeline.export.dest import Dest
from pipeline.export.options import ExportOptions, ExportPlan
from pipeline.export.source import Source
from pipeline.export.units import ExportStats, write_units
from pipeline.rundir.layout import RunDir

TARGETS = {"webdataset": webdataset, "hf": hf, "vbench": vbench, "files": files}
NAMED_KINDS = ("vbench", "files")  # the targets --name-column applies to


@dataclass(frozen=True)
class ExportResult:
    plan: ExportPlan
    stats: ExportStats
    dest: Dest
    left_out: dict[str, int]


def _check(options: ExportOptions) -> None:
    if options.kind not in TARGETS:
        raise ConfigError(f"--to {options.kind!r}: expected one of {sorted(TARGETS)}")
    if options.name_column and options.kind not in NAMED_KINDS:
        raise ConfigError(f"--name-column applies to --to {' and '.join(NAMED_KINDS)} only")


def open_dest(options: ExportOptions, run: RunDir) -> Dest:
    storage = options.dest_storage_options
    dest = Dest(options.dest, options.storage_options if storage is None else storage)
    same_store = type(dest.fs) is type(run.fs)
    if same_store and (dest.root == run.root or dest.root.startswith(run.root + "/")):
        raise ConfigError(f"DEST {options.dest!r} is inside the run dir; export somewhere else")
    return dest


def export_run(options: ExportOptions) -> ExportResult:
    _check(options)
    run = RunDir(options.run, options.storage_options)
    source = Source(run, options.selected_only)
    dest = open_dest(options, run)
    plan = TARGETS[options.kind].plan(source, dest, options)
    stats = write_units(
        plan.units,
        plan.final,
        dest,
        workers=options.workers,
        progress=options.progress,
        stop_after=options.stop_after,
    )
    return ExportResult(plan, stats, dest, source.left_out())
