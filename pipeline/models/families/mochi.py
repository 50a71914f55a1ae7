"""Mochi 1: `MochiPipeline` (T5-XXL text encoder, AsymmDiT).

diffusers 0.42 floors num_frames to 6k+1 silently ((F-1)//6 + 1 latent frames); sides
must be multiples of 16 (8x VAE, patch 2), else the transformer fails mid-run; its sigma
schedule divides by steps // 2, so one step raises ZeroDivisionError. Validate refuses
all three. Text is padded to max_sequence_length 256, never to the batch's longest.
With num_videos_per_prompt > 1 and several prompts diffusers pairs embeddings and masks
in different orders (embeds repeat per prompt, masks per batch): the renderer never
uses it, one sample per prompt entry. `force_zeros_for_empty_prompt` (off unless a
checkpoint's model_index sets it) zeroes the *whole batch's* text when its last text is
empty; the cache encodes each text alone, so such a checkpoint matches a plain call only
at batch size 1 (the default).
"""

from __future__ import annotations

from pipeline.models.families.base import Family, Shape, encode_with, model_card_defaults

MAX_SEQUENCE_LENGTH = 256  # MochiPipeline.__call__'s default

MOCHI = Family(
    name="mochi",
    title="Mochi 1 text-to-video",
    pipeline_classes=("MochiPipeline",),
    shape=Shape(frame_step=6, side_multiple=16),
    # genmo/mochi-1-preview: 480x848, 85 frames (6k+1) at 30 fps, 64 steps, guidance 4.5.
    defaults=model_card_defaults(480, 848, 85, 30, 64, 4.5),
    encode_text=encode_with(
        max_sequence_length=MAX_SEQUENCE_LENGTH, names=("prompt_embeds", "prompt_attention_mask")
    ),
    lanes=("first-block", "taylorseer", "pab", "quantize"),  # attention: SDPA itself
    min_inference_steps=2,
    hub_hints=("mochi",),
)
FAMILIES = (MOCHI,)
