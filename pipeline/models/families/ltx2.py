"""LTX-2 (2.0, 2.3, 2.5): video with a synchronized audio track. `LTX2Pipeline` (text-to-video)
and `LTX2ImageToVideoPipeline` (a row's `image` is the first frame; the same repos' weights:
a text-to-video checkpoint renders its rows that give an `image` with it, model spec +
`#i2v`).

Variants, read from the checkpoint's configs (unreadable configs: LTX-2.3):
- LTX-2.5: a Gemma 4 text encoder (text_encoder/config.json model_type gemma4*); its image
  rows re-encode the image at H.264 CRF 18 (diffusers' `resolve_default_image_crf`).
- LTX-2.0: a transformer without cross-attention modulation (`cross_attn_mod` false or
  absent). diffusers 0.42's call defaults follow the LTX-2.3/2.5 recipe; per its own
  docstrings LTX-2.0 takes `use_cross_timestep=False` ("the legacy LTX-2.0 behavior") and
  STG at block 29 (2.3: 28): both are this variant's fixed call arguments (`call_args`).
- LTX-2.3 (cross_attn_mod true): the call defaults.

Measured on the tiny checkpoints (diffusers 0.42, CPU):
- num_frames: floored silently to 8k+1 ((F-1)//8+1 latent frames; 2..8 -> 1, 10..16 -> 9)
  while the audio is sized from the requested F: validate refuses other counts. 1 frame
  works. num_frames=None means 121 (without a duration head; LTX-2.5's duration head would
  predict a length); promptreel always passes the row's num_frames, so min_seconds /
  max_seconds (bounds of that prediction only) never apply.
- height/width: multiples of 32 or `check_inputs` raises. A side of exactly 32 (one latent)
  also fails inside a VAE decoder with reflect padding (LTX-2.0's): refused for LTX-2.0
  (`Shape.min_side`).
- `frame_rate` moves pixels (RoPE positions are in seconds: frame_rate / motion_speed) and
  sets the audio length, so the row's fps is the call's frame_rate (`call_fps`).
- frames: float in [0, 1]. Audio: `output.audio` stays a torch tensor (B, channels, n) even
  with output_type="np", in [-1, 1] (the vocoder ends in tanh; the 2.3/2.5 vocoder with
  bandwidth extension clamps). Channels: the vocoder's out_channels (2, stereo).
  Sample rate: `pipe.vocoder.config.output_sampling_rate` (24000 on LTX-2.0's
  `LTX2Vocoder`, 48000 on 2.3/2.5's `LTX2VocoderWithBWE`), as diffusers' own examples
  pass to `encode_video`; `pipe.audio_sampling_rate` (16000, the audio VAE's mel rate) is
  NOT the output rate.
- Audio length: L = round(num_frames / frame_rate * 25) audio latents (16000 / hop 160 /
  4), decoded causally to 4L - 3 mel frames of output_rate / 100 samples each:
  n = (4 * round(num_frames / frame_rate * 25) - 3) * output_rate / 100, i.e. about 30 ms
  (+-20 ms of rounding) shorter than num_frames / frame_rate, not round(F / fps * rate).
  (9 frames at 24 fps, 48 kHz: 15840 samples, 0.330 s for 0.375 s of video.)
- Guidance: classifier-free guidance (a batch of negative + positive) runs when
  guidance_scale > 1 OR audio_guidance_scale > 1 (default 7): at guidance_scale 1 the
  negative prompt still moves pixels unless audio_guidance_scale is 1 too (`needs_negative`).
  With both at 1 the negative is ignored (measured: identical frames and audio).
  STG (stg_scale > 0, one more pass) and modality isolation (modality_scale > 1, one more)
  are on by default: a step costs up to 4 transformer passes.
  diffusers takes `audio_X or X` for the four audio scales, so an audio scale of 0 silently
  becomes the video value: validate refuses 0 for them (give a tiny value to mean "off").
- Text: Gemma 3 hidden states of all layers, each text padded LEFT to max_sequence_length
  1024 (the call's default; longer prompts are cut at 1024 tokens) and normalised per text
  with its own mask: an embedding never depends on its batch-mates (batch_pixel_safe).
  A text encoded alone with encode_prompt equals its row of the in-call encoding, and
  cached embeddings give identical pixels (measured) -- but `encode_text` is None: one
  text's embedding is 1024 x 3840 x 49 values (Gemma-3-12B, all 49 hidden states), 385 MB
  in bfloat16, so the embedding cache's 256 entries would hold ~98 GB of GPU memory, for
  a saving of one text-encoder pass (milliseconds beside the 19B transformer's steps).
  The pipeline encodes its prompts in each call instead.
- Prompt enhancement (`enable_prompt_enhancement`, default False) stays off: it would rewrite
  the prompt with a sampled Gemma generation.

Per-row parameters (the ones diffusers' LTX-2.3 docs example tunes, all plain floats, plus
motion_speed): stg_scale, modality_scale, guidance_rescale, audio_guidance_scale,
audio_stg_scale, audio_modality_scale, audio_guidance_rescale, motion_speed; image rows
also image_crf. Kept at the call's defaults (not per-row): spatio_temporal_guidance_blocks
(a list; per variant as above), use_cross_timestep (a bool; per variant), sigmas /
timesteps (lists: a distilled checkpoint -- LTX-2.5-Diffusers' default transformer,
LTX-2-19b-distilled -- wants diffusers' DISTILLED_SIGMA_VALUES, which promptreel does not
pass: it renders num_inference_steps of the linear schedule), noise_scale (acts only on
latents given to the call, which promptreel never gives), decode_timestep /
decode_noise_scale (act only with a timestep-conditioned video VAE; the LTX-2 VAEs are
not), max_sequence_length (1024), enable_prompt_enhancement (False).

Image-to-video: `image_crf` re-compresses the image with H.264 (PyAV) before encoding it,
as the model was trained (diffusers' default: 33, LTX-2.5 18); 0 skips it. PyAV (`av`) is
needed for any other value, else the call raises ImportError naming it.
`LTX2ImageToVideoPipeline` encodes the call's one image with one generator per prompt:
media rows render one per call.
"""

from __future__ import annotations

import numpy as np

from pipeline.models.families.base import (
    ONE_IMAGE_PER_CALL,
    Checkpoint,
    Family,
    Param,
    Shape,
    finite_at_least,
    in_closed_range,
    model_card_defaults,
)

T2V_CLASSES = ("LTX2Pipeline",)
I2V_CLASSES = ("LTX2ImageToVideoPipeline",)
SHAPE = Shape(frame_step=8, side_multiple=32)
# LTX-2.0's VAE decoder pads by reflection, which fails on a side of one latent (32 px).
SHAPE_2_0 = Shape(
    frame_step=8, side_multiple=32, min_side=64, side_why="LTX-2.0's VAE decoder fails on 32"
)

# diffusers.pipelines.ltx2.utils.DEFAULT_NEGATIVE_PROMPT (Lightricks' ltx-pipelines default),
# the negative of diffusers' LTX-2.3 examples.
NEGATIVE = (
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive "
    "noise, grainy texture, poor lighting, flickering, motion blur, distorted proportions, "
    "unnatural skin tones, deformed facial features, asymmetrical face, missing facial features, "
    "extra limbs, disfigured hands, wrong hand count, artifacts around text, inconsistent "
    "perspective, camera shake, incorrect depth of field, background too sharp, background "
    "clutter, distracting reflections, harsh shadows, inconsistent lighting direction, color "
    "banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny valley effect, "
    "incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, "
    "mismatched lip sync, silent or muted audio, distorted voice, robotic voice, echo, "
    "background noise, off-sync audio, incorrect dialogue, added dialogue, repetitive speech, "
    "jittery movement, awkward pauses, incorrect timing, unnatural transitions, inconsistent "
    "framing, tilted camera, flat lighting, inconsistent tone, cinematic oversaturation, "
    "stylized filters, or AI artifacts."
)
# The negative of diffusers' LTX-2 (Lightricks/LTX-2) two-stage example.
NEGATIVE_2_0 = (
    "shaky, glitchy, low quality, worst quality, deformed, distorted, disfigured, motion smear, "
    "motion artifacts, fused fingers, bad anatomy, weird hand, ugly, transition, static."
)
# diffusers' LTX-2 docs examples (Lightricks/LTX-2, LTX-2.3): 768x512, 121 frames at
# frame_rate 24, 30 steps (the call's default), guidance 3.
DEFAULTS = model_card_defaults(512, 768, 121, 24, 30, 3.0, NEGATIVE)
DEFAULTS_2_0 = model_card_defaults(512, 768, 121, 24, 30, 3.0, NEGATIVE_2_0)


def above_zero(v: np.ndarray) -> np.ndarray:
    return np.isfinite(v) & (v > 0)


# The call's defaults: diffusers' LTX-2.3 recipe (its docs example passes exactly these).
PARAMS = (
    Param(
        "stg_scale",
        default=1.0,
        expected="a finite number >= 0 (0: off)",
        ok=finite_at_least(0.0),
        help="spatio-temporal guidance of the video (one more transformer pass; 0: off)",
    ),
    Param(
        "modality_scale",
        default=3.0,
        expected="a finite number >= 0 (1: off)",
        ok=finite_at_least(0.0),
        help="modality-isolation guidance of the video (audio-video sync; 1: off)",
    ),
    Param(
        "guidance_rescale",
        default=0.7,
        expected="a number in 0..1",
        ok=in_closed_range(0.0, 1.0),
        help="rescales the guided video prediction against over-exposure (0: off)",
    ),
    Param(
        "audio_guidance_scale",
        default=7.0,
        expected="a finite number above 0 (diffusers takes 0 as guidance_scale)",
        ok=above_zero,
        help="classifier-free guidance of the audio (above 1: the negative prompt is used)",
    ),
    Param(
        "audio_stg_scale",
        default=1.0,
        expected="a finite number above 0 (diffusers takes 0 as stg_scale)",
        ok=above_zero,
        help="spatio-temporal guidance of the audio",
    ),
    Param(
        "audio_modality_scale",
        default=3.0,
        expected="a finite number above 0 (diffusers takes 0 as modality_scale)",
        ok=above_zero,
        help="modality-isolation guidance of the audio (1: off)",
    ),
    Param(
        "audio_guidance_rescale",
        default=0.7,
        expected="a number above 0, at most 1 (diffusers takes 0 as guidance_rescale)",
        ok=lambda v: in_closed_range(0.0, 1.0)(v) & (v > 0),
        help="guidance rescale of the audio",
    ),
    Param(
        "motion_speed",
        default=1.0,
        expected="a finite number above 0",
        ok=above_zero,
        help="motion relative to real time: positions use frame_rate / motion_speed "
        "(0.2: 5x slow motion, with the Slow-Motion-Control LoRA)",
    ),
)


def _image_crf(default: int) -> Param:
    return Param(
        "image_crf",
        default=default,
        expected="a whole number in 0..51 (0: the image as given)",
        ok=in_closed_range(0.0, 51.0),
        kind="int",
        help="H.264 CRF the image is re-compressed at before encoding, as in training "
        "(needs PyAV: `pip install av`; 0 skips it)",
    )


# diffusers' resolve_default_image_crf: 33 through LTX-2.3 (Gemma 3), 18 for LTX-2.5.
IMAGE_CRF = _image_crf(33)
IMAGE_CRF_2_5 = _image_crf(18)


def _param(item, name: str) -> float:
    return dict(item.params).get(name, next(p.default for p in PARAMS if p.name == name))


def uses_negative(item) -> bool:
    """CFG (and so the negative prompt) runs when the video OR the audio guidance is
    above 1 (diffusers' do_classifier_free_guidance)."""
    return item.guidance_scale > 1.0 or _param(item, "audio_guidance_scale") > 1.0


def audio_of(pipe, output) -> list:
    """One (float32 samples (channels, n), sample rate) per clip of the call, the samples
    as the vocoder gave them (not clamped: audio_sha256 hashes them, and QC's `clipped`
    counts those at full scale; its tanh or clamp keeps them in [-1, 1]): `output.audio`
    is the vocoder's waveform tensor (B, channels, n) whatever the output_type; its rate
    is the vocoder's output_sampling_rate."""
    rate = int(pipe.vocoder.config.output_sampling_rate)
    waves = output.audio.float().cpu().numpy()
    return [(np.ascontiguousarray(wave, np.float32), rate) for wave in waves]


def is_2_5(checkpoint: Checkpoint) -> bool:
    """A Gemma 4 text encoder (the LTX-2.5 repos)."""
    return checkpoint.config("text_encoder").get("model_type", "").startswith("gemma4")


def is_2_0(checkpoint: Checkpoint) -> bool:
    """A readable transformer config without cross-attention modulation (LTX-2.0)."""
    config = checkpoint.config("transformer")
    return bool(config) and not config.get("cross_attn_mod", False)


def is_2_3(checkpoint: Checkpoint) -> bool:
    """Neither of the above (unreadable configs too): the call's own defaults."""
    return not is_2_5(checkpoint) and not is_2_0(checkpoint)


# LTX-2.0's fixed call arguments (see the module docstring).
CALL_2_0 = (("use_cross_timestep", False), ("spatio_temporal_guidance_blocks", [29]))
COMMON = dict(
    encode_text=None,
    attention_masks=True,
    call_fps="frame_rate",
    audio_of=audio_of,
    needs_negative=uses_negative,
    dtype="bfloat16",
)
NOTES = "renders a synchronized audio track; fps is the call's frame_rate (moves pixels)"


def _i2v(name: str, title: str, defaults: dict, crf: Param, shape=SHAPE, **rest) -> Family:
    return Family(
        name=name,
        title=title,
        shape=shape,
        pipeline_classes=I2V_CLASSES,
        defaults=defaults,
        params=(*PARAMS, crf),
        batch_pixel_safe=False,
        batch_size_why=ONE_IMAGE_PER_CALL,
        media_inputs=("image",),
        media_required=("image",),
        notes=NOTES + "; image_crf other than 0 needs PyAV",
        **COMMON,
        **rest,
    )


def _t2v(name: str, title: str, defaults: dict, i2v: Family, **rest) -> Family:
    return Family(
        name=name,
        title=title,
        shape=i2v.shape,
        pipeline_classes=T2V_CLASSES,
        defaults=defaults,
        params=PARAMS,
        media_tasks=(("image", i2v.name),),
        notes=NOTES,
        **COMMON,
        **rest,
    )


# No hub hints on the image-to-video families: the LTX-2 repos hold LTX2Pipeline checkpoints.
LTX2_5_I2V = _i2v(
    "ltx2.5-i2v",
    "LTX-2.5 image-to-video (LTX2ImageToVideoPipeline; image is the first frame; audio)",
    DEFAULTS,
    IMAGE_CRF_2_5,
    matches=is_2_5,
)
LTX2_0_I2V = _i2v(
    "ltx2.0-i2v",
    "LTX-2.0 image-to-video (LTX2ImageToVideoPipeline; image is the first frame; audio)",
    DEFAULTS_2_0,
    IMAGE_CRF,
    shape=SHAPE_2_0,
    matches=is_2_0,
    call_args=CALL_2_0,
)
LTX2_I2V = _i2v(
    "ltx2-i2v",
    "LTX-2.3 image-to-video (LTX2ImageToVideoPipeline; image is the first frame; audio)",
    DEFAULTS,
    IMAGE_CRF,
    matches=is_2_3,
)
LTX2_5 = _t2v(
    "ltx2.5",
    "LTX-2.5 text-to-video with audio (LTX2Pipeline, Gemma 4 text encoder)",
    DEFAULTS,
    LTX2_5_I2V,
    matches=is_2_5,
    hub_hints=("ltx-2.5", "ltx2.5"),
)
LTX2 = _t2v(
    "ltx2",
    "LTX-2.3 text-to-video with audio (LTX2Pipeline)",
    DEFAULTS,
    LTX2_I2V,
    matches=is_2_3,
    hub_hints=("ltx-2.3", "ltx2.3"),
)
LTX2_0 = _t2v(
    "ltx2.0",
    "LTX-2.0 text-to-video with audio (LTX2Pipeline; legacy cross-timestep, STG block 29)",
    DEFAULTS_2_0,
    LTX2_0_I2V,
    matches=is_2_0,
    call_args=CALL_2_0,
    hub_hints=("ltx-2", "ltx2"),  # after 2.3 / 2.5, whose ids contain these too
)
# Each checkpoint matches one variant; this order is the hub hints' ("ltx-2" last).
FAMILIES = (LTX2_5_I2V, LTX2_I2V, LTX2_0_I2V, LTX2_5, LTX2, LTX2_0)
