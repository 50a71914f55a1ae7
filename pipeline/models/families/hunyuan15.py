"""HunyuanVideo 1.5: `HunyuanVideo15Pipeline` (text-to-video) and
`HunyuanVideo15ImageToVideoPipeline` (a row's `image` is the first frame); 480p and 720p
checkpoints (the transformer's target_size 640 / 960), each also CFG-distilled (the guider
at guidance 1), and the 480p image-to-video step-distilled one (`use_meanflow`).

Measured on the tiny checkpoints with diffusers 0.42 (tests/support/new_families/hunyuan15.py):
- guidance lives in the `guider` component (ClassifierFreeGuidance, the checkpoint's value
  in guider/guider_config.json: 6, or 1 when CFG-distilled); `__call__` takes no
  guidance_scale (TypeError). The row's guidance_scale is applied per call as diffusers'
  docs do it, `pipe.guider = pipe.guider.new(guidance_scale=...)` (`prepare_call`), so a
  row's guidance is what renders (3 and 6 render differently) and what the catalog records.
- the guider runs its second, negative pass unless guidance_scale is 1 (math.isclose):
  below 1 too (0.5 uses the negative). At 1 the negative is neither encoded nor used.
  Checkpoints whose guider is not ClassifierFreeGuidance in the diffusers formulation are
  refused at the first call (which rows need a negative could not be told).
- frames: (F-1)//4+1 latent frames, floored silently (6, 7, 8 render 5); 4k+1 as asked
  (1, 5, 9). Sides: floored silently to multiples of 16 (40 renders 32; 24 renders 16).
  Validate refuses both first. Output in [0, 1].
- text: Qwen2.5-VL hidden states of the chat-templated text padded to 1108 tokens and
  cropped at 108 (1000 kept), plus ByT5 embeddings of the prompt's quoted text ("...",
  padded to 256; zeros and a zero mask for a prompt without quotes). Both are padded to
  fixed lengths and encoded text by text: encoding each text alone equals the call's own
  encoding, so `encode_text` caches all four tensors (prompt_embeds, prompt_embeds_mask,
  prompt_embeds_2, prompt_embeds_mask_2; masks in the transformer's dtype, as the call
  casts them). The ByT5 encoder differs by ~5e-7 with autograd on: encode under
  inference_mode, as the renderer does.
- batching: the VAE's causal attention mask does not broadcast over a batch, so a call of 2+
  prompts raises in decode (RuntimeError "output with shape [2, 1, S, S] doesn't match the
  broadcast shape [2, 2, S, S]"; unfixed upstream); with VAE slicing a batch decodes but
  moves pixels by 1/255 from the prompts alone. Each row renders alone (batch_pixel_safe
  False), which equals a plain call of that row.
- image-to-video: `__call__` takes no height or width (TypeError): it picks the size from
  the image, the bucket of the transformer's target_size area (sides multiples of 16)
  nearest its aspect, and crops the image to it. Not every bucket maps to itself (a
  48x80 image renders 64x48 at target_size 64), so a row's size could not be what the
  clip gets in general: rows render the checkpoint's 16:9 bucket only (diffusers' own
  default aspect; 480x848 at 480p, 720x1280 at 720p; read from target_size), which maps
  to itself; the image is fitted (`resize`) to it first. The text encoders read no image:
  the cache works as for text-to-video.
"""

from __future__ import annotations

import json
import logging
import math

from pipeline.models.families.base import (
    ONE_IMAGE_PER_CALL,
    Checkpoint,
    Family,
    Shape,
    model_card_defaults,
)

NAMES = ("prompt_embeds", "prompt_embeds_mask", "prompt_embeds_2", "prompt_embeds_mask_2")
SHAPE = Shape(frame_step=4, side_multiple=16)
PATCH = 16  # the VAE's 16x: the bucket sides' multiple
TARGET_SIZES = {480: 640, 720: 960}  # transformer target_size of the 480p / 720p checkpoints
BATCH_WHY = (
    "diffusers 0.42's VAE cannot decode a batch (its attention mask does not broadcast): "
    "each row renders alone"
)


def encode_hunyuan15(pipe, text: str) -> dict:
    """One text as `__call__` encodes it: both encoders, in the transformer's dtype."""
    outputs = pipe.encode_prompt(
        prompt=[text],
        device=pipe._execution_device,
        dtype=pipe.transformer.dtype,
        batch_size=1,
    )
    return dict(zip(NAMES, outputs, strict=True))


def cfg_on(item) -> bool:
    """ClassifierFreeGuidance is off only at guidance 1 (math.isclose); below 1 it is on."""
    return not math.isclose(item.guidance_scale, 1.0)


def apply_guidance(pipe, item) -> None:
    """The call's guidance_scale as its guider's: `pipe.guider.new(guidance_scale=...)`, a
    fresh guider (the checkpoint's other guider settings kept), as diffusers' docs set it."""
    guider = pipe.guider
    if type(guider).__name__ != "ClassifierFreeGuidance" or guider.config.get(
        "use_original_formulation"
    ):
        raise ValueError(
            f"this HunyuanVideo 1.5 checkpoint's guider is {type(guider).__name__} "
            f"{dict(guider.config)}; promptreel applies a row's guidance_scale to "
            "ClassifierFreeGuidance in the diffusers formulation only"
        )
    # Each guider construction logs diffusers' "experimental feature" warning: once a call.
    quiet = logging.getLogger("diffusers.guiders.guider_utils")
    was = quiet.disabled
    quiet.disabled = True
    try:
        pipe.guider = guider.new(guidance_scale=float(item.guidance_scale))
    finally:
        quiet.disabled = was


def crop_sizes(target_size: int) -> list[tuple[int, int]]:
    """diffusers' generate_crop_size_list: the (height, width) buckets of target_size²
    pixels, sides multiples of 16, aspect at most 4."""
    patches = round((target_size / PATCH) ** 2)
    sizes, wide, high = [], patches, 1
    while wide > 0:
        if max(wide, high) / min(wide, high) <= 4.0:
            sizes.append((wide * PATCH, high * PATCH))
        if (high + 1) * wide <= patches:
            high += 1
        else:
            wide -= 1
    return sizes


def bucket(target_size: int, height: float, width: float) -> tuple[int, int]:
    """diffusers' calculate_default_height_width: the bucket nearest the aspect
    height/width, from below for a tall aspect and from above for a wide one."""
    sizes = crop_sizes(target_size)
    aspect = float(height) / float(width)
    gaps = [round(h / w, 5) - aspect for h, w in sizes]
    side = [(i, g) for i, g in enumerate(gaps) if (g <= 0 if aspect >= 1 else g >= 0)]
    return sizes[min(side, key=lambda pair: abs(pair[1]))[0]]


def sixteen_nine(target_size: int) -> tuple[int, int]:
    """The size a call renders without one (diffusers' default aspect 16:9)."""
    return bucket(target_size, 9, 16)


def _guider(checkpoint: Checkpoint) -> dict:
    path = None if checkpoint.root is None else checkpoint.root / "guider" / "guider_config.json"
    if path is None or not path.is_file():
        return {}
    return json.loads(path.read_text())


def cfg_distilled(checkpoint: Checkpoint) -> bool:
    """The CFG-distilled checkpoints ship their guider at guidance 1 (CFG off)."""
    return _guider(checkpoint).get("guidance_scale") == 1.0


def is_720p(checkpoint: Checkpoint) -> bool:
    return checkpoint.config("transformer").get("target_size") == TARGET_SIZES[720]


def step_distilled(checkpoint: Checkpoint) -> bool:
    return bool(checkpoint.config("transformer").get("use_meanflow"))


def _both(*tests):
    return lambda checkpoint: all(test(checkpoint) for test in tests)


SIZE_WHY = "the pipeline picks the size from the image; its 16:9 size renders as asked"


def image_shape(target_size: int) -> Shape:
    """Image-to-video renders the checkpoint's 16:9 bucket only (see the docstring)."""
    return Shape(4, 16, fixed_size=sixteen_nine(target_size), fixed_size_why=SIZE_WHY)


def image_shape_for(resolution: int):
    """The 16:9 size of the checkpoint's own target_size (the card's when unreadable)."""

    def shape_for(checkpoint: Checkpoint) -> Shape:
        target = checkpoint.config("transformer").get("target_size")
        return image_shape(int(target or TARGET_SIZES[resolution]))

    return shape_for


# The model card (github.com/Tencent-Hunyuan/HunyuanVideo-1.5 README, "Optimal Inference
# Configurations" and "Command Line Arguments"): 121 frames, 50 steps, CFG 6 (1 for the
# CFG-distilled, which "must use 50 steps"), step-distilled 480p I2V "8 or 12 steps", negative
# prompt ''; 24 fps as its diffusers example exports; 16:9 as its default aspect ratio.
def _defaults(resolution: int, guidance: float, steps: int = 50) -> dict:
    height, width = sixteen_nine(TARGET_SIZES[resolution])
    return model_card_defaults(height, width, 121, 24, steps, guidance)


def _family(name, title, resolution, guidance, hints, image=False, steps=50, **rest) -> Family:
    task = dict(
        pipeline_classes=("HunyuanVideo15ImageToVideoPipeline",),
        shape=image_shape(TARGET_SIZES[resolution]),
        call_names=(("guidance_scale", None), ("height", None), ("width", None)),
        media_inputs=("image",),
        media_required=("image",),
        batch_size_why=ONE_IMAGE_PER_CALL,
        shape_for=image_shape_for(resolution),
    )
    if not image:
        task = dict(
            pipeline_classes=("HunyuanVideo15Pipeline",),
            shape=SHAPE,
            call_names=(("guidance_scale", None),),
            batch_size_why=BATCH_WHY,
        )
    distilled = "; CFG-distilled: guidance 1 (one pass)" if guidance == 1.0 else ""
    return Family(
        name=name,
        title=title,
        defaults=_defaults(resolution, guidance, steps),
        encode_text=encode_hunyuan15,
        needs_negative=cfg_on,
        batch_pixel_safe=False,
        attention_masks=True,
        hub_hints=hints,
        prepare_call=apply_guidance,
        notes="guidance_scale is applied to the checkpoint's guider per call (CFG, a "
        f"second pass, unless 1){distilled}",
        **task,
        **rest,
    )


I2V = "HunyuanVideo 1.5 image-to-video"
T2V = "HunyuanVideo 1.5 text-to-video"
FAMILIES = (
    _family(
        "hunyuan1.5-i2v-480p-step-distilled",
        f"{I2V} 480p step-distilled (meanflow; 8 or 12 steps)",
        480,
        1.0,
        ("480p_i2v_step_distilled",),
        image=True,
        steps=8,
        matches=step_distilled,
    ),
    _family(
        "hunyuan1.5-i2v-720p-distilled",
        f"{I2V} 720p CFG-distilled",
        720,
        1.0,
        ("720p_i2v_distilled",),
        image=True,
        matches=_both(is_720p, cfg_distilled),
    ),
    _family(
        "hunyuan1.5-i2v-720p", f"{I2V} 720p", 720, 6.0, ("720p_i2v",), image=True, matches=is_720p
    ),
    _family(
        "hunyuan1.5-i2v-480p-distilled",
        f"{I2V} 480p CFG-distilled",
        480,
        1.0,
        ("480p_i2v_distilled",),
        image=True,
        matches=cfg_distilled,
    ),
    _family("hunyuan1.5-i2v-480p", f"{I2V} 480p", 480, 6.0, ("480p_i2v",), image=True),
    _family(
        "hunyuan1.5-720p-distilled",
        f"{T2V} 720p CFG-distilled",
        720,
        1.0,
        ("720p_t2v_distilled",),
        matches=_both(is_720p, cfg_distilled),
    ),
    _family("hunyuan1.5-720p", f"{T2V} 720p", 720, 6.0, ("720p_t2v",), matches=is_720p),
    _family(
        "hunyuan1.5-480p-distilled",
        f"{T2V} 480p CFG-distilled",
        480,
        1.0,
        ("480p_t2v_distilled",),
        matches=cfg_distilled,
    ),
    _family(
        "hunyuan1.5-480p",
        f"{T2V} 480p",
        480,
        6.0,
        ("480p_t2v", "hunyuanvideo-1.5", "hunyuanvideo1.5", "hunyuanvideo-1_5", "hunyuanvideo15"),
    ),
)
