"""AnimateDiff: `AnimateDiffPipeline` (Stable Diffusion 1.5 UNet + a MotionAdapter).

diffusers 0.42: sides must be multiples of 8 (`check_inputs` raises otherwise). The
motion module's positional table has `motion_max_seq_length` entries (32 in the
released adapters, which were trained on 16-frame clips): more frames fail with a
tensor-size error once a GPU is busy, so the limit is read from the checkpoint's own
config and validate refuses longer rows. `encode_prompt` takes positional arguments
and pads CLIP text to its 77 tokens, never to the batch's longest: batching is text-safe.
"""

from __future__ import annotations

from pipeline.models.families.base import (
    Checkpoint,
    Family,
    Shape,
    call_default,
    model_card_defaults,
)

DEFAULT_MAX_FRAMES = 32  # MotionAdapter's default motion_max_seq_length
SHAPE = Shape(
    frame_step=1,
    side_multiple=8,
    max_frames=DEFAULT_MAX_FRAMES,
    max_frames_why="the motion module's length (motion_max_seq_length); trained on 16",
)
# The SD 1.5 negative prompt diffusers' AnimateDiff docs use.
NEGATIVE = "bad quality, worse quality"


def motion_shape(checkpoint: Checkpoint) -> Shape:
    """The frame limit this checkpoint's motion module sets: the UNetMotionModel's own
    config (what runs), else the separate motion_adapter's, else the adapter default."""
    for component in ("unet", "motion_adapter"):
        length = checkpoint.config(component).get("motion_max_seq_length")
        if length:
            return Shape(SHAPE.frame_step, SHAPE.side_multiple, int(length), SHAPE.max_frames_why)
    return SHAPE


def encode_animatediff(pipe, text: str) -> dict:
    """One text as `__call__` encodes it: (prompt, device, per-prompt count, CFG) are
    positional; `clip_skip` is `__call__`'s default (the renderer never sets one)."""
    embeds, _ = pipe.encode_prompt(
        [text], pipe._execution_device, 1, False, clip_skip=call_default(pipe, "clip_skip")
    )
    return {"prompt_embeds": embeds}


ANIMATEDIFF = Family(
    name="animatediff",
    title="AnimateDiff (Stable Diffusion 1.5 + MotionAdapter)",
    pipeline_classes=("AnimateDiffPipeline",),
    shape=SHAPE,
    # The diffusers AnimateDiff docs: 512x512, 16 frames at 8 fps, 25 steps, guidance 7.5.
    defaults=model_card_defaults(512, 512, 16, 8, 25, 7.5, NEGATIVE),
    encode_text=encode_animatediff,
    shape_for=motion_shape,
    hub_hints=("animatediff", "animate-diff"),
    dtype="float16",
    notes="frames up to the motion module's length (read from the checkpoint)",
)
FAMILIES = (ANIMATEDIFF,)
