"""What the command line's flags become: one RunConfig (and the media limits `validate`
takes), with the defaults that depend on the model."""

from __future__ import annotations

import time

from pipeline.cli.lanes import lane_settings, lanes_need_batch_one
from pipeline.cli.scoring import score_settings
from pipeline.config import (
    ClusterSettings,
    EncodeSettings,
    MediaLimits,
    RenderSettings,
    RunConfig,
    ScoreSettings,
)
from pipeline.driver.stopping import deadline_from
from pipeline.errors import ConfigError
from pipeline.models import resolve_model


def default_batch_size(model: str) -> int:
    """The family's recommended batch size; a bad --model is reported where it is used."""
    try:
        return resolve_model(model).family.default_batch_size
    except ConfigError:
        return RenderSettings().batch_size


def config_from_args(args) -> RunConfig:
    device = args.device or ("cuda" if args.gpus_per_actor > 0 else "cpu")
    lanes = lane_settings(args)
    batch_size = args.batch_size or default_batch_size(args.model)
    if lanes_need_batch_one(lanes) and args.batch_size is None:
        batch_size = 1  # a cache that decides per batch renders each request alone
    return RunConfig(
        manifest=args.manifest,
        out=getattr(args, "out", None) or "",
        render=RenderSettings(
            model=args.model,
            batch_size=batch_size,
            threads=args.threads,
            dtype=args.dtype,
            device=device,
            compile=args.compile,
            offload=args.offload,
            vae_tiling=args.vae_tiling,
            **lanes,
        ),
        encode=EncodeSettings(format=args.format, audio=not args.no_audio),
        cluster=ClusterSettings(
            address=args.address,
            actors=args.actors,
            gpus_per_actor=args.gpus_per_actor,
            cpus_per_actor=args.cpus_per_actor,
            encode_workers=args.encode_workers,
            batch_timeout_s=args.batch_timeout,
        ),
        storage_options=args.storage_options,
        max_retries=args.max_retries,
        retry_failed=args.retry_failed,
        strict_seeds=args.strict_seeds,
        variants=args.variants,
        allow_version_change=getattr(args, "allow_version_change", False),
        flush_interval_s=args.flush_interval,
        progress=not args.no_progress,
        qc=args.qc,
        report_interval_s=args.report_interval,
        faults=tuple(args.inject_fault),
        deadline=deadline_from(args.stop_at, args.max_hours, time.time()),
        stop_grace_s=args.stop_grace,
        media=media_limits(args),
        resize=args.resize,
        lora=args.lora,
        scores=score_settings(args) if hasattr(args, "score") else ScoreSettings(),
    )


def media_limits(args) -> MediaLimits:
    return MediaLimits(allow_private_urls=args.allow_private_urls)
