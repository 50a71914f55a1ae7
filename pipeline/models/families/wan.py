"""Wan 2.1 and Wan 2.2 (A14B two experts, TI2V-5B): `WanPipeline`; image-to-video (Wan 2.1
I2V with its CLIP image encoder, first-and-last frame through `last_image`; Wan 2.2 I2V A14B):
`WanImageToVideoPipeline`; video-to-video (Wan 2.1 with a source video): `WanVideoToVideoPipeline`.

diffusers 0.42 `WanPipeline.__call__` rounds num_frames to 4k+1 and floors sides to
multiples of vae_scale_factor_spatial * patch (16; 32 for TI2V-5B's 16x VAE) with only a
warning; validate refuses such rows instead. `__call__` encodes text at
max_sequence_length 512 while `encode_prompt` defaults to 226: the cache must use 512
(226 moved pixels by up to 86/255 on the tiny model).
"""

from __future__ import annotations

from pipeline.models.families.base import (
    DIT_LANES,
    ONE_IMAGE_PER_CALL,
    ONE_VIDEO_PER_CALL,
    VIDEO_TO_VIDEO,
    Checkpoint,
    Family,
    Param,
    Shape,
    encode_with,
    finite_at_least,
    model_card_defaults,
)

CLASSES = ("WanPipeline",)
MAX_SEQUENCE_LENGTH = 512  # WanPipeline.__call__'s default
encode_wan = encode_with(max_sequence_length=MAX_SEQUENCE_LENGTH, names=("prompt_embeds",))

# The negative prompt of the Wan model cards (the English form diffusers' docs use).
NEGATIVE = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, "
    "images, static, overall gray, worst quality, low quality, JPEG compression residue, "
    "ugly, incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, "
    "disfigured, misshapen limbs, fused fingers, still picture, messy background, three "
    "legs, many people in the background, walking backwards"
)

GUIDANCE_SCALE_2 = Param(
    "guidance_scale_2",
    default=3.0,
    expected="a finite number >= 0",
    ok=finite_at_least(0.0),
    help="guidance of the low-noise expert (transformer_2), below boundary_ratio",
)


def is_a14b(checkpoint: Checkpoint) -> bool:
    """Two experts: a boundary_ratio hands the low-noise steps to transformer_2."""
    return checkpoint.index.get("boundary_ratio") is not None


def is_ti2v(checkpoint: Checkpoint) -> bool:
    """TI2V-5B: expand_timesteps and a 48-channel, 16x spatial VAE."""
    if checkpoint.index.get("expand_timesteps"):
        return True
    return checkpoint.config("vae").get("z_dim") == 48


WAN22_A14B = Family(
    name="wan2.2-a14b",
    title="Wan 2.2 T2V A14B (two experts: transformer_2, boundary_ratio)",
    pipeline_classes=CLASSES,
    shape=Shape(frame_step=4, side_multiple=16),
    defaults=model_card_defaults(720, 1280, 81, 16, 40, 4.0, NEGATIVE),
    encode_text=encode_wan,
    lanes=DIT_LANES,
    params=(GUIDANCE_SCALE_2,),
    matches=is_a14b,
    hub_hints=("a14b",),
)
WAN22_TI2V = Family(
    name="wan2.2-ti2v",
    title="Wan 2.2 TI2V-5B (text-to-video; 16x VAE, z_dim 48, expand_timesteps)",
    pipeline_classes=CLASSES,
    # diffusers floors sides to multiples of 32 here with only a warning.
    shape=Shape(frame_step=4, side_multiple=32),
    defaults=model_card_defaults(704, 1280, 121, 24, 50, 5.0, NEGATIVE),
    encode_text=encode_wan,
    lanes=DIT_LANES,
    matches=is_ti2v,
    hub_hints=("ti2v",),
    media_tasks=(("image", "wan2.2-ti2v-i2v"),),
)
WAN = Family(
    name="wan",
    title="Wan 2.1 text-to-video (1.3B, 14B)",
    pipeline_classes=CLASSES,
    shape=Shape(frame_step=4, side_multiple=16),
    defaults=model_card_defaults(480, 832, 81, 16, 50, 5.0, NEGATIVE),
    encode_text=encode_wan,
    lanes=DIT_LANES,
    hub_hints=("wan",),
    media_tasks=(("video", "wan2.1-v2v"),),
)

# WanImageToVideoPipeline.__call__ conditions the whole call on ONE image (its CLIP
# embedding is repeated over the batch): media rows render one per call.
I2V_CLASSES = ("WanImageToVideoPipeline",)


def is_flf2v(checkpoint: Checkpoint) -> bool:
    """Wan 2.1 FLF2V: the transformer embeds positions over BOTH images' CLIP tokens, so a
    call must give a last image (and a 2.1 I2V transformer cannot take one)."""
    return checkpoint.config("transformer").get("pos_embed_seq_len") is not None


def _i2v(name, title, defaults, inputs, required, **rest) -> Family:
    """A WanImageToVideoPipeline family: Wan's shape rules and text encoding, one media
    row per call."""
    rest.setdefault("shape", Shape(frame_step=4, side_multiple=16))
    return Family(
        name=name,
        title=title,
        pipeline_classes=I2V_CLASSES,
        defaults=defaults,
        encode_text=encode_wan,
        lanes=DIT_LANES,
        batch_pixel_safe=False,
        batch_size_why=ONE_IMAGE_PER_CALL,
        media_inputs=inputs,
        media_required=required,
        **rest,
    )


WAN22_I2V_A14B = _i2v(
    "wan2.2-i2v-a14b",
    "Wan 2.2 I2V A14B (image-to-video, two experts; last_image for a last frame)",
    model_card_defaults(720, 1280, 81, 16, 40, 3.5, NEGATIVE),
    ("image", "last_image"),
    ("image",),
    params=(GUIDANCE_SCALE_2,),
    matches=is_a14b,
    hub_hints=("i2v-a14b",),
)
WAN21_FLF2V = _i2v(
    "wan2.1-flf2v",
    "Wan 2.1 FLF2V (first and last frame: image and last_image)",
    model_card_defaults(720, 1280, 81, 16, 50, 5.5, NEGATIVE),
    ("image", "last_image"),
    ("image", "last_image"),
    matches=is_flf2v,
    hub_hints=("flf2v",),
)
# TI2V-5B given an image: WanImageToVideoPipeline on the same weights (its expand_timesteps
# config puts the image's latents in the first frame; no image encoder), as diffusers'
# Wan 2.2 docs load it.
WAN22_TI2V_I2V = _i2v(
    "wan2.2-ti2v-i2v",
    "Wan 2.2 TI2V-5B image-to-video (an `image` on the TI2V weights)",
    model_card_defaults(704, 1280, 121, 24, 50, 5.0, NEGATIVE),
    ("image",),
    ("image",),
    shape=Shape(frame_step=4, side_multiple=32),
    matches=is_ti2v,
    notes="a `wan2.2-ti2v` checkpoint renders its rows that give an `image` with this "
    "pipeline, on the same weights (model spec + `#i2v`)",
)
WAN21_I2V = _i2v(
    "wan2.1-i2v",
    "Wan 2.1 image-to-video (480p/720p, CLIP image encoder)",
    model_card_defaults(480, 832, 81, 16, 50, 5.0, NEGATIVE),
    ("image",),
    ("image",),
    hub_hints=("wan2.1-i2v",),  # not bare "i2v": CogVideoX and Hunyuan I2V ids have it
)

# WanVideoToVideoPipeline: the text-to-video checkpoints' components with a flow-matching
# scheduler; it noises the VAE latents of the given frames by `strength` and denoises.
WAN21_V2V = Family(
    name="wan2.1-v2v",
    title="Wan 2.1 video-to-video (a source `video`, `strength`)",
    pipeline_classes=("WanVideoToVideoPipeline",),
    shape=Shape(frame_step=4, side_multiple=16),
    defaults=model_card_defaults(480, 832, 81, 16, 50, 5.0, NEGATIVE),
    encode_text=encode_wan,
    lanes=DIT_LANES,
    hub_hints=("v2v",),
    notes="a `wan` (2.1 text-to-video) checkpoint renders its rows that give a `video` with "
    "this pipeline, on the same weights (model spec + `#v2v`)",
    **VIDEO_TO_VIDEO,
)

CONDITIONING_SCALE = Param(
    "conditioning_scale",
    default=1.0,
    expected="a finite number >= 0",
    ok=finite_at_least(0.0),
    help="how strongly VACE's control video (and mask) steer the render",
)


def is_single_expert(checkpoint: Checkpoint) -> bool:
    return not is_a14b(checkpoint)


# WanVACEPipeline (Wan 2.1 VACE 1.3B / 14B): a control `video`, optionally a per-frame `mask`
# (white: render anew, black: keep), frame for frame with the clip, and `reference_images`
# (a list, resized by the pipeline); one video per call.
WAN_VACE = Family(
    name="wan-vace",
    title="Wan 2.1 VACE (a control `video`, optional `mask`, `conditioning_scale`)",
    pipeline_classes=("WanVACEPipeline",),
    shape=Shape(frame_step=4, side_multiple=16),
    defaults=model_card_defaults(480, 832, 81, 16, 50, 5.0, NEGATIVE),
    encode_text=encode_wan,
    params=(CONDITIONING_SCALE,),
    batch_pixel_safe=False,
    batch_size_why=ONE_VIDEO_PER_CALL,
    media_inputs=("video", "mask", "reference_images"),
    media_required=("video",),
    frames_from_video=True,
    matches=is_single_expert,
    hub_hints=("vace",),
    notes="Wan 2.2 VACE (two experts) is not supported yet",
)

# Variants first: detection takes the first family whose `matches` accepts a checkpoint.
FAMILIES = (WAN22_I2V_A14B, WAN21_FLF2V, WAN22_TI2V_I2V, WAN21_I2V, WAN22_A14B, WAN22_TI2V, WAN)
FAMILIES += (WAN21_V2V, WAN_VACE)
