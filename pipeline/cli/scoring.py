"""Best-of-N flags (`--score`, `--keep`, `--by`, `--min-score`, scoring actor resources),
shared by `render` and `promptreel score RUN`."""

from __future__ import annotations

import argparse
import json

from pipeline.config import ScoreSettings
from pipeline.score import SCORERS, parse_score_flag
from pipeline.score.selection import parse_min_score

SCORE_HELP = "; ".join(f"{s.name}: {s.description}" for s in SCORERS.values())


def add_score_args(parser: argparse.ArgumentParser, renders: bool = True) -> None:
    """The best-of-N flags; `renders` adds --until and --max-variants (render only)."""
    group = parser.add_argument_group("best of N (scores never change pixels; see docs/scoring.md)")
    group.add_argument(
        "--score",
        action="append",
        default=[],
        metavar="NAME[=MODEL]",
        help="score every finished clip (repeatable): clip[=CLIP dir or hub id], "
        "aesthetic=[CLIP::]HEAD.safetensors, motion. Catalog column score_NAME. " + SCORE_HELP,
    )
    group.add_argument(
        "--keep",
        type=int,
        default=None,
        metavar="K",
        help="mark the K best variants of each row as selected (needs --by)",
    )
    group.add_argument("--by", default=None, metavar="NAME", help="the score --keep ranks by")
    group.add_argument(
        "--min-score",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variant scoring below VALUE is not selected (repeatable)",
    )
    defaults = ScoreSettings()
    if renders:
        _add_until_args(group, defaults)
    group.add_argument(
        "--score-cpus",
        type=float,
        default=defaults.cpus,
        metavar="N",
        help="CPUs of the scoring actor (default: %(default)s)",
    )
    group.add_argument(
        "--score-gpus",
        type=float,
        default=defaults.gpus,
        metavar="N",
        help="GPUs of the scoring actor, e.g. 0.25 beside the render actors (default: %(default)s)",
    )
    group.add_argument(
        "--score-batch-size",
        type=int,
        default=defaults.batch_size,
        metavar="N",
        help="clips per scoring call (default: %(default)s)",
    )


def _add_until_args(group, defaults: ScoreSettings) -> None:
    group.add_argument(
        "--until",
        default=None,
        metavar="NAME>=VALUE",
        help="render until good: every row's variant 0 first, then a row's next variant "
        "only while none of its variants scored NAME >= VALUE (needs --score NAME)",
    )
    group.add_argument(
        "--max-variants",
        type=int,
        default=defaults.max_variants,
        metavar="M",
        help="with --until: variants tried per row at most (default: %(default)s)",
    )


def score_settings(args) -> ScoreSettings:
    """The flags as ScoreSettings; a malformed flag is a ScoreError (exit 2)."""
    scorers = tuple(dict(parse_score_flag(text) for text in args.score).items())
    defaults = ScoreSettings()
    return ScoreSettings(
        scorers=scorers,
        cpus=args.score_cpus,
        gpus=args.score_gpus,
        batch_size=max(1, args.score_batch_size),
        keep=args.keep,
        by=args.by,
        min_scores=tuple(parse_min_score(text) for text in args.min_score),
        until=getattr(args, "until", None),
        max_variants=getattr(args, "max_variants", defaults.max_variants),
    )


def add_score_command(commands) -> None:
    score = commands.add_parser(
        "score",
        help="add scores (and a selection) to an existing run dir; no clip is touched",
    )
    score.add_argument("run", help="run dir")
    score.add_argument("--storage-options", type=json.loads, default={}, metavar="JSON")
    add_score_args(score, renders=False)
