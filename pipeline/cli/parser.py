"""The command line's arguments: the parser (what its flags become: run_config.py)."""

from __future__ import annotations

import argparse
import json

from pipeline.cli.lanes import add_lane_args
from pipeline.cli.scoring import add_score_args, add_score_command
from pipeline.config import (
    ClusterSettings,
    EncodeSettings,
    RenderSettings,
    RunConfig,
)
from pipeline.driver.stopping import add_stop_args
from pipeline.media.fit import RESIZE_POLICIES
from pipeline.models import describe as models

EPILOG = """exit codes: 0 all items ok; 2 bad input or configuration (nothing rendered);
3 the run finished but some items failed (they are in the catalog with their error);
4 stopped with items pending (--stop-at/--max-hours, SIGINT or SIGTERM): the catalog
  lists them as pending, and the same command resumes.

examples:
  promptreel validate prompts.parquet
  promptreel plan     prompts.parquet --out runs/r1
  promptreel render   prompts.parquet --out runs/r1 --actors 2 --batch-size 4
  promptreel status   runs/r1
  promptreel models                                   # families: rules, defaults, params
  promptreel render   prompts.parquet --out runs/r1     # after a crash: finishes the job
  promptreel export   runs/r1 --to webdataset shards/   # also --to hf | vbench | files
  promptreel render   prompts.parquet --out runs/r1 --stop-at 08:30   # exit 4 by then
  promptreel status   runs/r1 --watch
  promptreel demo"""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def actor_count(text: str) -> int | None:
    """`--actors`: a count, or `auto` (None; pipeline/driver/sizing.py decides)."""
    return None if text.strip().lower() == "auto" else positive_int(text)


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _add_manifest_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", help="Parquet, CSV or JSONL; a path or any fsspec URL")
    parser.add_argument(
        "--model",
        default="tiny",
        help="'tiny' (embedded random-weight Wan, built locally), 'null' (benchmark aid: "
        "cheap frames, no diffusion), a local diffusers directory, or a hub id "
        "(default: %(default)s); a hub id is pinned to a commit before planning, "
        "'org/name@sha' names one. A manifest `model` column overrides it per row.",
    )
    parser.add_argument(
        "--variants",
        type=positive_int,
        default=1,
        metavar="N",
        help="render each row N times (best of N): variant i uses seed (seed + i) mod 2**64 "
        "and the id <id>~v<i>; variant 0 is the row itself. A manifest `variants` column "
        "overrides it per row (default: %(default)s)",
    )
    parser.add_argument(
        "--strict-seeds",
        action="store_true",
        help="treat seeds equal modulo 2**32 (same video: torch uses the low 32 bits) as errors",
    )
    parser.add_argument(
        "--storage-options",
        type=json.loads,
        default={},
        metavar="JSON",
        help="fsspec options for the manifest and --out, e.g. '{\"anon\": false}'",
    )
    media = parser.add_argument_group("media rows (image, last_image: see manifests/SCHEMA.md)")
    media.add_argument(
        "--resize",
        choices=RESIZE_POLICIES,
        default=RunConfig.__dataclass_fields__["resize"].default,
        help="how an image is fitted to its row's height and width when the row has no "
        "`resize` cell: crop (centre crop to the aspect, then resize), pad (fit inside, "
        "black bars) or stretch (default: %(default)s)",
    )
    media.add_argument(
        "--lora",
        type=_lora_flag,
        default=None,
        metavar="LORA",
        help="LoRA adapters for every row without a `lora` cell: a .safetensors path or URL "
        '(scale 1.0), or a JSON list like \'[{"uri": "style.safetensors", "scale": 0.8}]\' '
        "(manifests/SCHEMA.md)",
    )
    media.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="let http(s) media URLs reach loopback, private and link-local addresses "
        "(refused by default: a manifest is data from elsewhere)",
    )


def _add_render_args(parser: argparse.ArgumentParser) -> None:
    d_render, d_encode, d_cluster = RenderSettings(), EncodeSettings(), ClusterSettings()
    pixels = parser.add_argument_group("pixels (recorded in job.json; a resume must match)")
    pixels.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="items per pipeline call; changes a few pixel values (default: the model "
        "family's, see `promptreel models`)",
    )
    pixels.add_argument(
        "--threads",
        type=positive_int,
        default=d_render.threads,
        metavar="N",
        help="torch threads per render actor, pinned (default: %(default)s)",
    )
    pixels.add_argument(
        "--dtype",
        default=d_render.dtype,
        choices=("float32", "bfloat16", "float16"),
        help="(default: %(default)s)",
    )
    pixels.add_argument(
        "--device",
        default=None,
        choices=("cpu", "cuda"),
        help="default: cuda when --gpus-per-actor > 0, else cpu",
    )
    pixels.add_argument(
        "--compile", action="store_true", help="regional torch.compile (GPU; changes pixels)"
    )
    pixels.add_argument(
        "--offload",
        default="none",
        choices=("none", "model", "sequential"),
        help="CPU offload for big models on small GPUs (same pixels, slower)",
    )
    pixels.add_argument(
        "--vae-tiling", action="store_true", help="decode in tiles: less memory, changes pixels"
    )
    add_lane_args(pixels)
    pixels.add_argument(
        "--format",
        default=d_encode.format,
        choices=("mp4", "webm", "gif", "webp", "png"),
        help="clip container (default: %(default)s, H.264 yuv420p); webp is animated, png "
        "is one zip of the frames as PNGs per clip",
    )
    pixels.add_argument(
        "--no-audio",
        action="store_true",
        help="drop the sound of families that render it (LTX-2), on purpose and recorded; "
        "needed for gif, webp and png, which carry none (mp4 keeps it as AAC, webm as Opus)",
    )
    cluster = parser.add_argument_group("cluster (never changes pixels)")
    cluster.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray on 127.0.0.1)",
    )
    cluster.add_argument(
        "--actors",
        type=actor_count,
        default=None,
        metavar="N",
        help="render actors, one loaded pipeline each (default: auto: on a local Ray one "
        "per CPU at --cpus-per-actor each, or per GPU at --gpus-per-actor, as many as the "
        "free memory holds copies of the model; 1 on a cluster you join)",
    )
    cluster.add_argument(
        "--gpus-per-actor",
        type=non_negative,
        default=d_cluster.gpus_per_actor,
        metavar="G",
        help="fractions allowed, e.g. 0.5 (default: %(default)s)",
    )
    cluster.add_argument(
        "--cpus-per-actor",
        type=non_negative,
        default=d_cluster.cpus_per_actor,
        metavar="C",
        help="(default: %(default)s)",
    )
    cluster.add_argument(
        "--encode-workers",
        type=positive_int,
        default=d_cluster.encode_workers,
        metavar="N",
        help="concurrent ffmpeg processes per actor; a batch's small clips share one "
        "(default: %(default)s)",
    )
    cluster.add_argument(
        "--batch-timeout",
        type=non_negative,
        default=d_cluster.batch_timeout_s,
        metavar="S",
        help="an actor with no result for S seconds is presumed hung, killed and replaced; "
        "its items retry (default: %(default)s; 0: never)",
    )
    runs = parser.add_argument_group("resume and failures")
    runs.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=2,
        metavar="N",
        help="extra attempts for retriable failures (default: %(default)s)",
    )
    runs.add_argument(
        "--retry-failed",
        action="store_true",
        help="render again the items a previous run recorded as failed",
    )
    runs.add_argument(
        "--flush-interval",
        type=non_negative,
        default=30.0,
        metavar="S",
        help="seconds between ledger checkpoints; a killed driver loses at most "
        "this much work (default: %(default)s)",
    )
    runs.add_argument(
        "--qc",
        default="flag",
        choices=("flag", "fail", "off"),
        help="quality checks on each clip's frames (black, white, flat, frozen, flicker): "
        "flag records scores and qc_flags in the catalog, fail also makes a flagged row "
        "failed, off skips them (default: %(default)s; not recorded in job.json)",
    )
    runs.add_argument(
        "--report-interval",
        type=non_negative,
        default=300.0,
        metavar="S",
        help="rewrite report.html from the ledger every S seconds during the run "
        "(default: %(default)s; 0: only at the end)",
    )
    runs.add_argument("--no-progress", action="store_true", help="no progress bar")
    # Test-only: crash/hang/encode/nan/storage faults on one prompt (see pipeline/actor/faults.py).
    runs.add_argument("--inject-fault", action="append", default=[], help=argparse.SUPPRESS)
    add_stop_args(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptreel",
        description="Render a manifest of prompts and seeds into video clips on Ray, "
        "resumably: kill it at any moment and run the same command again.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check every row before any GPU time")
    _add_manifest_args(validate)

    plan = commands.add_parser("plan", help="dry run: counts, shape buckets, done/pending")
    _add_manifest_args(plan)
    plan.add_argument("--out", default=None, help="run dir, to count what is already done")
    plan.add_argument(
        "--seconds-per-item",
        type=non_negative,
        default=None,
        metavar="S",
        help="estimate GPU-hours at this rate (default: measured, if --out has one)",
    )
    _add_render_args(plan)

    render = commands.add_parser(
        "render",
        help="render everything not yet done",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_manifest_args(render)
    render.add_argument("--out", required=True, help="run dir: a path or fsspec URL")
    _add_render_args(render)
    add_score_args(render)
    render.add_argument(
        "--allow-version-change",
        action="store_true",
        help="resume a run dir rendered with other torch/diffusers/transformers versions "
        "(job.json records the new ones; earlier clips keep the old numerics)",
    )

    status = commands.add_parser("status", help="ok / failed / pending of a run dir, rate, ETA")
    status.add_argument("run", help="run dir")
    status.add_argument("--storage-options", type=json.loads, default={}, metavar="JSON")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--watch", action="store_true", help="refresh until the run is complete (or Ctrl-C)"
    )
    status.add_argument(
        "--interval", type=non_negative, default=5.0, metavar="S", help="(default: %(default)s)"
    )
    status.add_argument(
        "--refreshes", type=positive_int, default=None, metavar="N", help="stop after N refreshes"
    )

    verify = commands.add_parser(
        "verify", help="re-check clips against checksums and re-render a sample"
    )
    verify.add_argument("run", help="run dir")
    verify.add_argument(
        "--sample",
        type=int,
        default=2,
        metavar="N",
        help="items to re-render and compare frames_sha256 (default: %(default)s)",
    )
    verify.add_argument("--storage-options", type=json.loads, default={}, metavar="JSON")

    add_score_command(commands)  # `promptreel score RUN`: pipeline/cli/scoring.py

    from pipeline.export.cli import add_parser as add_export_parser

    add_export_parser(commands)
    models.add_parser(commands)  # `promptreel models`: pipeline/models/describe.py

    demo = commands.add_parser("demo", help="render manifests/demo.parquet with the tiny model")
    demo.add_argument("--out", default="runs/demo", help="run dir (default: %(default)s)")
    demo.add_argument("--actors", type=actor_count, default=None, help="(default: auto)")
    return parser


def _lora_flag(text: str) -> str:
    from pipeline.plan.lora_rows import parse_lora

    try:
        parse_lora(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
