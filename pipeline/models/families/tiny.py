"""The embedded tiny model (pipeline/models/tiny.py): a Wan pipeline, laptop-sized defaults.

Found only through the `promptreel.json` its builder writes, never by detection. Batch 4:
at its size batching pays, and its widths make the CPU-kernel batch effect visible.
"""

from __future__ import annotations

from pipeline.models.families.base import DIT_LANES, Family, Shape, model_card_defaults
from pipeline.models.families.wan import CLASSES, encode_wan

TINY = Family(
    name="tiny",
    title="embedded tiny random-weight Wan (tests, demo)",
    pipeline_classes=CLASSES,
    shape=Shape(frame_step=4, side_multiple=16),
    defaults=model_card_defaults(64, 64, 9, 8, 4, 5.0),
    encode_text=encode_wan,
    lanes=DIT_LANES,
    default_batch_size=4,
    batch_size_why="a tiny model: batching amortises per-call overhead",
    matches=lambda _checkpoint: False,
    dtype="float32",
)
FAMILIES = (TINY,)
