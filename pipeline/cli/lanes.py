"""The speed-lane flags of `render`, `plan` and `validate` (pipeline/models/lanes.py)."""

from __future__ import annotations

from pipeline.models.lanes import QUANT_TYPES, canonical_cache, parse_cache


def add_lane_args(group) -> None:
    group.add_argument(
        "--attention-backend",
        default=None,
        metavar="NAME",
        help="speed lane: diffusers' attention kernel (flash, _flash_3, sage, _native_cudnn, "
        "...; on CPU native, _native_math, _native_flash); same math, bits move with kernel "
        "order (default: diffusers' native)",
    )
    group.add_argument(
        "--cache",
        default=None,
        metavar="KIND[:VALUE]",
        help="speed lane: a step cache, first-block[:THRESHOLD] (needs --batch-size 1), "
        "taylorseer[:INTERVAL] or pab[:SKIP]; other pixels, so it is part of every key. "
        "`promptreel models` lists the families that take it",
    )
    group.add_argument(
        "--quantize",
        default=None,
        choices=tuple(QUANT_TYPES),
        help="speed lane: torchao quantization of the transformer (needs torchao); other "
        "pixels, so it is part of every key",
    )


def lane_settings(args) -> dict:
    """RenderSettings fields of the lanes; the cache in its one canonical spelling."""
    return dict(
        attention_backend=args.attention_backend,
        cache=canonical_cache(args.cache),
        quantize=args.quantize,
    )


def lanes_need_batch_one(lanes: dict) -> bool:
    """A cache that decides per batch (first-block) renders each request alone."""
    return lanes["cache"] is not None and parse_cache(lanes["cache"]).kind.per_batch
