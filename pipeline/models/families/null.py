"""`--model null`: deterministic frames without diffusion (see pipeline/models/null.py)."""

from __future__ import annotations

from pipeline.models.families.base import Family, Shape, model_card_defaults

NULL = Family(
    name="null",
    title="benchmarking aid: cheap deterministic frames, no diffusion",
    pipeline_classes=(),
    shape=Shape(frame_step=1, side_multiple=2),
    defaults=model_card_defaults(64, 64, 9, 8, 1, 1.0),
    default_batch_size=4,
    batch_size_why="no model: the batch size only shapes the plan",
    matches=lambda _checkpoint: False,
    dtype="float32",
)
FAMILIES = (NULL,)
