"""HunyuanVideo: `HunyuanVideoPipeline` (Llama text encoder + CLIP pooled, prompt template);
HunyuanVideo-I2V: `HunyuanVideoImageToVideoPipeline` (a row's `image` is the first frame).

diffusers 0.42: `guidance_scale` is the *embedded* guidance of the distilled model (a
transformer input, no second pass); real classifier-free guidance is `true_cfg_scale`
(> 1 with a negative prompt: a second transformer pass per step), a per-row parameter
here. `__call__` floors num_frames to 4k+1 silently ((F-1)//4 + 1 latent frames) and
raises on sides not multiples of 16; validate refuses both first.
`encode_prompt` takes no `do_classifier_free_guidance` and returns (embeds, pooled, mask):
the Llama hidden states of the template-wrapped text cropped at the template's
`crop_start`, padded to max_sequence_length 256 (never to the batch's longest: batching
is text-safe), plus CLIP's pooled output.

Image-to-video: the LLaVA text encoder reads the image together with the text (and the
negative with a black image), so no text embedding can be cached apart from its image:
`encode_text` is None. The token_replace transformer (hunyuanvideo-community/
HunyuanVideo-I2V) puts the image latents in the first frame; the latent_concat one
(HunyuanVideo-I2V-33ch: noise, image latents and a mask as channels) decodes and then drops
the first 4 frames, returning num_frames - 4 (read in diffusers 0.42): its rows are called
with num_frames + 4, so a row's clip has the num_frames it asks for.
"""

from __future__ import annotations

from pipeline.models.families.base import (
    DIT_LANES,
    ONE_IMAGE_PER_CALL,
    Checkpoint,
    Family,
    Param,
    Shape,
    call_default,
    finite_at_least,
    model_card_defaults,
)

NAMES = ("prompt_embeds", "pooled_prompt_embeds", "prompt_attention_mask")

TRUE_CFG_SCALE = Param(
    "true_cfg_scale",
    default=1.0,
    expected="a finite number >= 1 (1: off)",
    ok=finite_at_least(1.0),
    help="real classifier-free guidance (a second pass with the negative prompt) above 1",
)


def encode_hunyuan(pipe, text: str) -> dict:
    """One text with exactly the template and length `__call__` would use."""
    outputs = pipe.encode_prompt(
        prompt=[text],
        prompt_template=call_default(pipe, "prompt_template"),
        max_sequence_length=call_default(pipe, "max_sequence_length"),
        device=pipe._execution_device,
    )
    return dict(zip(NAMES, outputs, strict=True))


def true_cfg_above_one(item) -> bool:
    """The negative prompt is encoded and used only when true CFG is on (diffusers)."""
    return dict(item.params).get("true_cfg_scale", TRUE_CFG_SCALE.default) > 1.0


HUNYUAN = Family(
    name="hunyuan",
    title="HunyuanVideo text-to-video (embedded guidance; true CFG per row)",
    pipeline_classes=("HunyuanVideoPipeline",),
    shape=Shape(frame_step=4, side_multiple=16),
    # The model card: 720x1280, 129 frames at 24 fps, 50 steps, embedded guidance 6.
    defaults=model_card_defaults(720, 1280, 129, 24, 50, 6.0),
    encode_text=encode_hunyuan,
    lanes=DIT_LANES,
    attention_masks=True,
    params=(TRUE_CFG_SCALE,),
    needs_negative=true_cfg_above_one,
    hub_hints=("hunyuanvideo", "hunyuan-video", "hunyuan_video"),
    notes="guidance_scale is embedded guidance; true_cfg_scale > 1 doubles the passes",
)


def is_latent_concat(checkpoint: Checkpoint) -> bool:
    """The 33-channel transformer (unreadable configs: assumed token_replace)."""
    return checkpoint.config("transformer").get("image_condition_type") == "latent_concat"


I2V = dict(
    pipeline_classes=("HunyuanVideoImageToVideoPipeline",),
    shape=Shape(frame_step=4, side_multiple=16),
    # diffusers' HunyuanVideoImageToVideoPipeline docs example for HunyuanVideo-I2V: the
    # call's 720x1280, 129 frames, 50 steps, embedded guidance 6; 24 fps as HunyuanVideo.
    defaults=model_card_defaults(720, 1280, 129, 24, 50, 6.0),
    encode_text=None,
    lanes=DIT_LANES,
    attention_masks=True,
    params=(TRUE_CFG_SCALE,),
    needs_negative=true_cfg_above_one,
    batch_pixel_safe=False,
    batch_size_why=ONE_IMAGE_PER_CALL,
    media_inputs=("image",),
    media_required=("image",),
)
HUNYUAN_I2V_33CH = Family(
    name="hunyuan-i2v-33ch",
    title="HunyuanVideo-I2V-33ch image-to-video (latent_concat; embedded guidance)",
    matches=is_latent_concat,
    hub_hints=("hunyuanvideo-i2v-33ch",),
    call_frames_extra=4,
    notes="called with num_frames + 4: the pipeline drops its first 4 decoded frames",
    **I2V,
)
HUNYUAN_I2V = Family(
    name="hunyuan-i2v",
    title="HunyuanVideo-I2V image-to-video (token_replace; embedded guidance; true CFG per row)",
    hub_hints=("hunyuanvideo-i2v",),
    notes="guidance_scale is embedded guidance; true_cfg_scale > 1 doubles the passes",
    **I2V,
)
FAMILIES = (HUNYUAN_I2V_33CH, HUNYUAN_I2V, HUNYUAN)
