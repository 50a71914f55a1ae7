"""Cosmos Predict 2.5 (2B, 14B): `Cosmos2_5_PredictBasePipeline`, one pipeline for
Text2World (text only), Image2World (an `image`: the clip's first frame) and Video2World
(a `video`: the clip continues from its last 1 or 5 frames).

Measured on the tiny checkpoint (diffusers 0.42):
- num_frames: the latents hold (F-1)//4+1 frames and decode to 4k+1; any other F is
  filled by repeating each decoded frame 4 times and cutting (`_match_num_frames`: 6 frames
  come out as f0 f0 f0 f0 f1 f1) with no warning: validate refuses all but 4k+1 (1 frame
  is valid: one image). Frames in equal frames out.
- sides: `check_inputs` raises unless both are multiples of 16; validate refuses first.
- the rotary embedding covers max(max_size / patch) positions on every axis (128 for the
  real configs): 509 frames render, 513 raise a size mismatch; validate refuses past the
  checkpoint's own limit (`shape_for`). Sides past 128 * 16 = 2048 fail the same way, and
  are refused the same way (`Shape.max_side`).
- guidance: `noise + g * (noise - noise_neg)`, on only when g > 1; at g <= 1 the negative
  prompt is never encoded (pixels equal with any negative). A None negative at g > 1
  means diffusers' DEFAULT_NEGATIVE_PROMPT (the model-card negative below).
- text: Qwen2.5-VL (Cosmos-Reason1-7B) over a chat template (system prompt + the text),
  padded to max_sequence_length 512 ("max_length" padding, no attention mask) and
  truncated there; the embedding is every decoder layer's output (hidden_states[1:]),
  each normalised, concatenated. So a text's embedding never depends on its batch-mates
  (text batches are pixel-safe), and `encode_prompt` at the call's max_sequence_length
  reproduces the in-call encoding exactly (measured: equal tensors, equal pixels).
- Video2World: `__call__` keeps the LAST 4 * (num_latent_conditional_frames - 1) + 1
  frames (1 or 5) of the video it gets and raises on fewer; promptreel hands it the
  video's first num_frames frames (a condition video may be shorter than the clip), so
  the clip continues from frame min(num_frames, video frames) - 1: give a clip that ends
  where the render should start. The kept frames fill (kept-1)//4+1 latent frames as
  given, so with 2 (5 frames) a clip of 5 frames or fewer is all condition. One video
  per call (`__call__` raises on a batch); fewer frames than it keeps raise at render.
- Image2World: the image becomes frame 0 (zeros after it, one latent frame kept); it
  renders exactly as a one-frame video with num_latent_conditional_frames 1 (measured).
  With a batch of prompts and a list of generators diffusers fails (IndexError): media
  rows render alone anyway.
- conditional_frame_timestep moves pixels only through attention to the condition
  frames (their own velocity is replaced by the exact one): by ~3e-6 on the tiny model.

Quirks worked around:
- the guardrail (`load_args`): `__init__` builds `cosmos_guardrail.CosmosSafetyChecker()`
  when the checkpoint names no safety checker (ImportError without the package) and
  `__call__` raises ValueError when there is none. When `cosmos_guardrail` is installed
  it is built and runs as the pipeline intends (prompt check, faces pixelated); when it
  is not, promptreel passes its own pass-through checker (cosmos_guardrail.py here),
  which is not a CosmosSafetyChecker, so pixels are the pipeline's own.
- the guardrail checks `prompt` strings only (`if prompt is not None`): cached
  `prompt_embeds` would skip it, so with the guardrail installed `encode_text` is None
  and every call passes its prompts as text (no embedding cache for this family).
- torchvision: diffusers imports it only when installed, and the Cosmos transformer
  (concat_padding_mask, as in the real checkpoints) and the Image2World path
  (`to_tensor`) use it unguarded: without it a render fails with "NameError: name
  'transforms' is not defined" (or 'torchvision'). Install torchvision beside torch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np

from pipeline.errors import ConfigError
from pipeline.models.families.base import (
    Checkpoint,
    Family,
    Param,
    Shape,
    call_default,
    model_card_defaults,
)

CLASSES = ("Cosmos2_5_PredictBasePipeline",)
GUARDRAIL_PACKAGE = "cosmos_guardrail"

# diffusers' DEFAULT_NEGATIVE_PROMPT for Cosmos 2.5, the negative of its docs example.
NEGATIVE = (
    "The video captures a series of frames showing ugly scenes, static with no motion, "
    "motion blur, over-saturation, shaky footage, low resolution, grainy texture, "
    "pixelated images, poorly lit areas, underexposed and overexposed scenes, poor color "
    "balance, washed out colors, choppy sequences, jerky movements, low frame rate, "
    "artifacting, color banding, unnatural transitions, outdated special effects, fake "
    "elements, unconvincing visuals, poorly edited content, jump cuts, visual noise, and "
    "flickering. Overall, the video is of poor quality."
)

NUM_LATENT_CONDITIONAL_FRAMES = Param(
    "num_latent_conditional_frames",
    default=2,
    expected="1 or 2",
    ok=lambda v: (v == 1) | (v == 2),
    kind="int",
    help="Video2World: condition on the video's last frame (1) or last 5 frames (2)",
    with_media_only=True,
)
CONDITIONAL_FRAME_TIMESTEP = Param(
    "conditional_frame_timestep",
    default=0.0001,
    expected="a finite number (below 0: the condition frames take the noise's timestep)",
    ok=np.isfinite,
    help="the timestep the transformer sees for the condition frames (image or video rows)",
    with_media_only=True,
)

# The real configs' rotary range: max(max_size / patch_size) = max(128, 120, 120) latents.
ROPE_POSITIONS = 128
VAE_SCALE = 8  # px per latent, each side (the Wan 2.1 VAE)


def guardrail_installed() -> bool:
    """diffusers' own test (`is_cosmos_guardrail_available`): the module and its
    distribution are both there. Read without importing either."""
    if importlib.util.find_spec(GUARDRAIL_PACKAGE) is None:
        return False
    try:
        importlib.metadata.version(GUARDRAIL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def load_args() -> dict:
    """from_pretrained's extra keywords: none when the real guardrail is installed (the
    pipeline builds it), else promptreel's pass-through checker."""
    if guardrail_installed():
        return {}
    from pipeline.models.families.cosmos_guardrail import PassThroughSafetyChecker

    return {"safety_checker": PassThroughSafetyChecker()}


def need_torchvision(pipe) -> None:
    """diffusers' Cosmos transformer pads with torchvision when its config asks (every
    released checkpoint), and its Image2World path converts with it: without it the first
    render fails with a NameError. Say so at load, with the fix."""
    from diffusers.utils import is_torchvision_available

    if pipe.transformer.config.get("concat_padding_mask") and not is_torchvision_available():
        raise ConfigError(
            "Cosmos Predict 2.5 needs torchvision (diffusers' Cosmos transformer uses it): "
            "install the torchvision build that matches your torch"
        )


def encode_cosmos(pipe, text: str) -> dict:
    """One text at exactly the call's max_sequence_length (512); no guidance."""
    embeds, _ = pipe.encode_prompt(
        prompt=[text],
        do_classifier_free_guidance=False,
        max_sequence_length=call_default(pipe, "max_sequence_length"),
        device=pipe._execution_device,
    )
    return {"prompt_embeds": embeds}


def frames_limit(positions: int) -> int:
    return 4 * (positions - 1) + 1


def shape_of(positions: int, patch_side: int = 2) -> Shape:
    """4k+1 frames within `positions` latent frames; sides multiples of 16 within
    `positions` patches (of `patch_side` latents of 8 px): past either the rotary tables
    are too short and the call fails."""
    return Shape(
        frame_step=4,
        side_multiple=16,
        max_frames=frames_limit(positions),
        max_frames_why=f"the transformer's rotary embedding covers {positions} latent frames",
        max_side=positions * patch_side * VAE_SCALE,
        side_why=f"the transformer's rotary embedding covers {positions} patches per side",
    )


def checkpoint_shape(checkpoint: Checkpoint) -> Shape:
    """The rotary range this checkpoint's transformer config sets (the real one's when
    unreadable)."""
    config = checkpoint.config("transformer")
    sizes, patches = config.get("max_size"), config.get("patch_size")
    if not sizes or not patches:
        return shape_of(ROPE_POSITIONS)
    positions = max(s // p for s, p in zip(sizes, patches, strict=True))
    return shape_of(positions, patches[1])


def cosmos_family(guardrail: bool) -> Family:
    """The family as this machine runs it: with the guardrail installed, prompts go to
    the call as text (its prompt check would skip cached embeddings)."""
    return Family(
        name="cosmos2.5",
        title="Cosmos Predict 2.5 (Text2World; Image2World: `image`; Video2World: `video`)",
        pipeline_classes=CLASSES,
        shape=shape_of(ROPE_POSITIONS),
        shape_for=checkpoint_shape,
        # diffusers' Cosmos2_5_PredictBasePipeline docs example (nvidia/Cosmos-Predict2.5-2B,
        # revision diffusers/base/post-trained): the call's 704x1280, 93 frames, 36 steps,
        # guidance 7 and DEFAULT_NEGATIVE_PROMPT, exported at 16 fps.
        defaults=model_card_defaults(704, 1280, 93, 16, 36, 7.0, NEGATIVE),
        encode_text=None if guardrail else encode_cosmos,
        params=(NUM_LATENT_CONDITIONAL_FRAMES, CONDITIONAL_FRAME_TIMESTEP),
        load_args=load_args,
        after_load=need_torchvision,
        pixel_packages=(GUARDRAIL_PACKAGE,),
        media_inputs=("image", "video"),
        media_one_of=True,
        hub_hints=("cosmos-predict2.5",),
        notes="hub: nvidia/Cosmos-Predict2.5-2B@diffusers/base/post-trained (or -14B; "
        ".../pre-trained); needs torchvision. The guardrail runs when `cosmos_guardrail` "
        "is installed; without it promptreel passes a pass-through safety checker (no "
        "prompt check, no face blur).",
    )


FAMILIES = (cosmos_family(guardrail_installed()),)
