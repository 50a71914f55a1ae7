"""Settings of one export, and what each target hands the writer loop."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.export.naming import DEFAULT_STEM_BYTES
from pipeline.export.units import IndexUnit, Unit

KINDS = ("webdataset", "hf", "vbench", "files")


@dataclass(frozen=True)
class ExportOptions:
    run: str
    kind: str
    dest: str
    storage_options: dict = field(default_factory=dict)  # for RUN
    dest_storage_options: dict | None = None  # for DEST; default: the same as RUN's
    shard_size: int = 1000  # webdataset samples per shard
    name_column: str | None = None  # vbench, files: name files by this column, not `prompt`
    name_bytes: int = DEFAULT_STEM_BYTES  # files: byte budget of the prompt part of a name
    workers: int = 8  # units written at once (storage round trips dominate)
    selected_only: bool = False  # best of N: only the variants the run kept (`selected`)
    progress: bool = True
    stop_after: int | None = None  # tests only: SIGKILL after this many units


@dataclass(frozen=True)
class ExportPlan:
    """A target's output: its units, the final index written after all of them, and
    lines to print (e.g. VBench's samples per prompt)."""

    units: list[Unit]
    final: IndexUnit
    notes: tuple[str, ...] = ()
