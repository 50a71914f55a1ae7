"""The `export` subcommand: its arguments and what it prints (cli.py only hooks it in)."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.export.naming import DEFAULT_STEM_BYTES, MAX_NAME_BYTES
from pipeline.export.options import KINDS, ExportOptions

HELP = """exit codes: 0 exported; 2 bad input (no catalog, a format or name the target
cannot take, DEST holding files of another export): nothing is written.
Re-running the same command finishes a killed export and rewrites nothing complete.

examples:
  promptreel export runs/r1 --to webdataset shards/ --shard-size 1000
  promptreel export s3://b/runs/r1 --to hf s3://b/datasets/r1
  promptreel export runs/r1 --to vbench vbench_videos/mymodel/overall_consistency
  promptreel export runs/r1 --to files clips_for_review/"""


def _int_in(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got {text}")
        return value

    return parse


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export",
        help="a finished run as WebDataset shards, a HF videofolder, VBench videos or named files",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("run", help="finished run dir: a path or fsspec URL")
    export.add_argument("dest", help="output folder: a path or fsspec URL")
    export.add_argument("--to", required=True, choices=KINDS, dest="kind", help="target format")
    export.add_argument(
        "--shard-size",
        type=_int_in(1, 10**7),
        default=1000,
        metavar="N",
        help="webdataset: samples per shard (default: %(default)s)",
    )
    export.add_argument(
        "--name-column",
        default=None,
        metavar="COL",
        help="vbench, files: name files by this catalog column instead of `prompt` "
        "(VBench's augmented prompts are rendered long but saved under the original)",
    )
    export.add_argument(
        "--name-bytes",
        type=_int_in(8, MAX_NAME_BYTES - 80),
        default=DEFAULT_STEM_BYTES,
        metavar="N",
        help="files: UTF-8 byte budget of the prompt part of a name (default: %(default)s)",
    )
    export.add_argument(
        "--workers",
        type=_int_in(1, 256),
        default=8,
        metavar="N",
        help="files or shards written at once (default: %(default)s)",
    )
    export.add_argument(
        "--selected-only",
        action="store_true",
        help="best of N: only the variants the run selected (--keep/--min-score); "
        "their scores are in every target's metadata either way",
    )
    export.add_argument("--storage-options", type=json.loads, default={}, metavar="JSON")
    export.add_argument(
        "--dest-storage-options",
        type=json.loads,
        default=None,
        metavar="JSON",
        help="fsspec options for DEST (default: --storage-options)",
    )
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    # Test-only: SIGKILL the export after N units were written (a kill mid-export).
    export.add_argument("--inject-stop-after", type=int, default=None, help=argparse.SUPPRESS)


def cmd_export(args) -> int:
    from pipeline.export.run import export_run

    options = ExportOptions(
        run=args.run,
        kind=args.kind,
        dest=args.dest,
        storage_options=args.storage_options,
        dest_storage_options=args.dest_storage_options,
        shard_size=args.shard_size,
        name_column=args.name_column,
        name_bytes=args.name_bytes,
        workers=args.workers,
        selected_only=args.selected_only,
        progress=not args.no_progress,
        stop_after=args.inject_stop_after,
    )
    result = export_run(options)
    for note in result.plan.notes:
        print(note)
    stats, dest = result.stats, result.dest
    rate = stats.written / stats.wall_s if stats.wall_s else 0.0
    left_out = ", ".join(f"{n} {status}" for status, n in result.left_out.items())
    print(
        f"exported to {dest.uri(dest.root)} as {args.kind}: {stats.units} unit(s), "
        f"{stats.written} written, {stats.skipped} already complete; "
        f"{stats.clip_bytes / 1e6:.1f} MB of clips in {stats.wall_s:.1f}s ({rate:.1f} units/s)"
    )
    print(f"  index: {dest.uri(result.plan.final.path)} (written last)")
    if left_out:
        print(
            f"  left out: {left_out}; their rows are in the run's catalog.parquet",
            file=sys.stderr,
        )
    return 0
