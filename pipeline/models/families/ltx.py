"""LTX-Video 0.9.x: `LTXPipeline`, `LTXConditionPipeline` (text-only, or one `image` or
`video` condition per row at `frame_index` with `strength`), and `LTXImageToVideoPipeline`
(image-to-video: a row's `image` is the first frame).

diffusers 0.42 floors num_frames to 8k+1 silently (latent frames = (F-1)//8+1) and
raises on sides not multiples of 32 only once a GPU is busy; validate refuses both.
`encode_prompt` returns (embeds, mask, negative embeds, negative mask): the cache keeps
embeds and mask, encoded at the call's max_sequence_length (128; 256 for
LTXConditionPipeline). `frame_rate` stays diffusers' default 25 (rope scaling); the
`fps` column only labels the clip. The image-to-video pipeline shares all of this (its
`__call__` is LTXPipeline's plus `image`, one image per call).
"""

from __future__ import annotations

from pipeline.models.families.base import (
    ATTENTION_LANE,
    ONE_IMAGE_PER_CALL,
    Checkpoint,
    Family,
    Param,
    Shape,
    above_zero_up_to_one,
    encode_with,
    finite_at_least,
    in_closed_range,
    model_card_defaults,
)

NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"
NAMES = ("prompt_embeds", "prompt_attention_mask")  # the tuple's first two; negatives unused

# Only used when the VAE has timestep_conditioning (0.9.1 and later); the card's values.
PARAMS = (
    Param(
        "decode_timestep",
        default=0.05,
        expected="a number in 0..1",
        ok=in_closed_range(0.0, 1.0),
        help="timestep the VAE decodes at (timestep-conditioned VAEs)",
    ),
    Param(
        "decode_noise_scale",
        default=0.025,
        expected="a number in 0..1",
        ok=in_closed_range(0.0, 1.0),
        help="noise mixed into the latents before decoding",
    ),
)
# LTXConditionPipeline's one condition per row: an `image` or a `video` placed at
# frame_index with strength (its `__call__` keywords; a video condition is trimmed by the
# pipeline to min(its frames, num_frames - frame_index) rounded down to 8k+1).
CONDITION_PARAMS = (
    Param(
        "frame_index",
        default=0,
        expected="a whole number >= 0, below num_frames",
        ok=finite_at_least(0.0),
        kind="int",
        help="the clip frame the condition image (or the condition video's first frame) lands on",
        with_media_only=True,
    ),
    Param(
        "strength",
        default=1.0,
        expected="a number above 0, at most 1",
        ok=above_zero_up_to_one,  # as video-to-video's strength: one rule per column name
        help="how strongly the condition holds (1: its frames are kept as given)",
        with_media_only=True,
    ),
)
SHAPE = Shape(frame_step=8, side_multiple=32)
DEFAULTS = model_card_defaults(480, 704, 161, 24, 50, 3.0, NEGATIVE)


def is_condition_pipeline(checkpoint: Checkpoint) -> bool:
    return checkpoint.pipeline_class == "LTXConditionPipeline"


LTX_CONDITION = Family(
    name="ltx-condition",
    title="LTX-Video LTXConditionPipeline (text-to-video, or an image or video condition)",
    pipeline_classes=("LTXConditionPipeline",),
    shape=SHAPE,
    defaults=DEFAULTS,
    encode_text=encode_with(max_sequence_length=256, names=NAMES),
    lanes=(ATTENTION_LANE, "taylorseer", "pab", "quantize"),  # first-block: no blocks found
    attention_masks=True,
    params=(*PARAMS, *CONDITION_PARAMS),
    media_inputs=("image", "video"),  # optional: text rows batch as before
    media_one_of=True,
    matches=is_condition_pipeline,
    hub_hints=("ltx-video-0.9.5", "ltx-video-0.9.7", "ltx-video-0.9.8"),
)
LTX = Family(
    name="ltx",
    title="LTX-Video (LTXPipeline) text-to-video",
    pipeline_classes=("LTXPipeline",),
    shape=SHAPE,
    defaults=DEFAULTS,
    encode_text=encode_with(max_sequence_length=128, names=NAMES),
    lanes=(ATTENTION_LANE, "taylorseer", "pab", "quantize"),  # first-block: no blocks found
    attention_masks=True,
    params=PARAMS,
    hub_hints=("ltx",),
)
# LTXImageToVideoPipeline.__call__ encodes the whole call's `image` with one generator per
# prompt: media rows render one per call.
LTX_I2V = Family(
    name="ltx-i2v",
    title="LTX-Video image-to-video (LTXImageToVideoPipeline; image is the first frame)",
    pipeline_classes=("LTXImageToVideoPipeline",),
    shape=SHAPE,
    # diffusers' LTXImageToVideoPipeline docs example (Lightricks/LTX-Video): 704x480,
    # 161 frames, 50 steps, guidance 3 (the call's default), this negative, exported at 24 fps.
    defaults=DEFAULTS,
    encode_text=encode_with(max_sequence_length=128, names=NAMES),
    lanes=(ATTENTION_LANE, "taylorseer", "pab", "quantize"),  # first-block: no blocks found
    attention_masks=True,
    params=PARAMS,
    batch_pixel_safe=False,
    batch_size_why=ONE_IMAGE_PER_CALL,
    # No hub hint: the LTX repos hold LTXPipeline checkpoints; a hub id cannot tell.
    media_inputs=("image",),
    media_required=("image",),
)
FAMILIES = (LTX_CONDITION, LTX_I2V, LTX)
