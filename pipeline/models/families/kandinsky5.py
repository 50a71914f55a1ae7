"""Kandinsky 5.0 video: `Kandinsky5T2VPipeline` (Lite 2B 5s / 10s in its sft, pretrain, nocfg
and distilled16steps variants; Pro 19B) and `Kandinsky5I2VPipeline` (a row's `image` is the
first frame: I2V Pro). Qwen2.5-VL hidden states (cropped at the template's 128 tokens, up
to max_sequence_length 512 more) plus CLIP's pooled output; a HunyuanVideo VAE.

Measured on the tiny checkpoints with diffusers 0.42:
- frames: `__call__` turns num_frames into (F // 4) * 4 + 1 with only a warning (8 -> 9
  up, 6 or 7 -> 5 down, 2 -> 1); out frames = num_frames otherwise, 1 included. The
  transformer's 3D RoPE tables hold 128 positions per axis: 509 frames (128 latent frames)
  render, 513 raise IndexError; likewise sides above 2048 (128 patches of 16) raise:
  validate refuses both (`Shape.max_frames`, `Shape.max_side`).
- image-to-video needs at least 17 frames: `normalize_first_frame` rescales the first 4
  latent frames by the statistics of the next ones, so with 2 to 4 latent frames (5 to 13
  frames) it takes the std of nothing and every pixel is NaN, and with 1 (1 frame) it
  returns a tuple that fails (AttributeError); validate refuses them.
- sides: multiples of 16, else `check_inputs` raises. NABLA transformers (config
  `attention_type: "nabla"`: Lite 10s, Pro) group patches in 8x8 blocks: sides must be
  multiples of 128 (64 or 144 raise a reshape error), and only the `flex` attention backend
  takes their BlockMask (the default "native" raises `'BlockMask' object has no attribute
  'ndim'`), as diffusers' docs ask: `after_load` sets it, and these families take no
  --attention-backend. Flex runs on CPU too (unfused).
- batches are not pixel-safe: `_encode_prompt_qwen` pads the Qwen text to the batch's
  longest prompt and the transformer attends to the padding (no mask; cu_seqlens only sets
  the text RoPE length): a short prompt beside a long one moved by up to 38/255. Every row
  renders alone (default batch 1).
- the embedding cache: `encode_text` encodes ONE text as `__call__` does (its
  max_sequence_length 512, dtype = the transformer's), returning prompt_embeds_qwen
  (1, L, D), prompt_embeds_clip (1, D2) and prompt_cu_seqlens [0, L]: equal pixels to the
  call's own encoding. Concatenating two texts' entries (the renderer's torch.cat) would
  NOT make a batch call: Qwen lengths differ (RuntimeError), and cu_seqlens would read
  [0, L1, 0, L2]; it never happens because every call here holds one row.
- guidance <= 1: no negative is encoded or used (pixels equal whatever the negative). A
  None negative above 1 becomes the pipeline's own default, which is NEGATIVE below.
- the scheduler's shift (the original configs' scheduler_scale) lives in scheduler_config;
  `__call__` takes none, so no per-row parameter.
- speed lanes on the tiny model: attention backends run (regular attention); of the step
  caches, FirstBlockCache fails (IndexError: pop from empty list), PAB needs
  `current_timestep`, which this pipeline lacks, and TaylorSeer runs but changes nothing
  (its hooks find no layer here: equal pixels at interval 2 over 6 steps), so none is
  offered.

Variants: the Lite sft, pretrain, nocfg and distilled16steps checkpoints share one
architecture (the original repo's configs differ only in num_steps and guidance_weight,
which diffusers' configs do not carry), so nocfg and distilled are told apart by the
checkpoint's directory name (a hub snapshot's path holds its repo id:
models--kandinskylab--Kandinsky-5.0-T2V-Lite-nocfg-5s-Diffusers/snapshots/<sha>). NABLA
and Pro (model_dim 4096; Lite 1792) are read from the transformer config, with the name
("-10s", "-pro-") when that config is not on disk.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from pipeline.models.families.base import (
    ATTENTION_LANE,
    ONE_IMAGE_PER_CALL,
    Checkpoint,
    Family,
    Shape,
    call_default,
    model_card_defaults,
)

T2V_CLASSES = ("Kandinsky5T2VPipeline",)
I2V_CLASSES = ("Kandinsky5I2VPipeline",)
NAMES = ("prompt_embeds_qwen", "prompt_embeds_clip", "prompt_cu_seqlens")
# The negative of diffusers' docs examples, and `__call__`'s own when given None.
NEGATIVE = (
    "Static, 2D cartoon, cartoon, 2d animation, paintings, images, worst quality, low "
    "quality, ugly, deformed, walking backwards"
)
NABLA = "nabla"
FLEX = "flex"
MAX_FRAMES = 4 * 127 + 1  # the RoPE tables' 128 latent frames
MAX_FRAMES_WHY = "the transformer's RoPE tables hold 128 latent frames"
LANES = (ATTENTION_LANE, "quantize")
NABLA_LANES = ("quantize",)  # its attention backend is flex, always
LITE_MODEL_DIM, PRO_MODEL_DIM = 1792, 4096
MAX_SIDE = 128 * 16  # the RoPE tables' 128 patches of 16 px
MAX_SIDE_WHY = "the transformer's RoPE tables hold 128 patches of 16 px"
I2V_LEAST_FRAMES = 17  # 5 latent frames: the first 4 normalised by the ones after
FEW_FRAMES_WHY = "its first-frame normalisation needs 5 latent frames: fewer render NaN"
PADDED = (
    "the Qwen text is padded to the batch's longest prompt and the transformer attends to "
    "the padding: a prompt's pixels depend on its batch-mates"
)


def encode_kandinsky(pipe, text: str) -> dict:
    """One text with exactly the length and dtype `__call__` encodes with."""
    outputs = pipe.encode_prompt(
        prompt=[text],
        max_sequence_length=call_default(pipe, "max_sequence_length"),
        device=pipe._execution_device,
        dtype=pipe.transformer.dtype,
    )
    return dict(zip(NAMES, outputs, strict=True))


def flex_for_nabla(pipe) -> None:
    """NABLA's block-sparse mask is a flex BlockMask: no other backend takes it."""
    if pipe.transformer.config.get("attention_type") == NABLA:
        pipe.transformer.set_attention_backend(FLEX)


def _name(checkpoint: Checkpoint) -> str:
    return "" if checkpoint.root is None else str(Path(checkpoint.root).resolve()).lower()


def is_nabla(checkpoint: Checkpoint) -> bool:
    config = checkpoint.config("transformer")
    if config:
        return config.get("attention_type") == NABLA
    return any(word in _name(checkpoint) for word in ("-10s", "-pro-"))


def is_pro(checkpoint: Checkpoint) -> bool:
    config = checkpoint.config("transformer")
    if config:
        return config.get("model_dim", LITE_MODEL_DIM) >= PRO_MODEL_DIM
    return "-pro-" in _name(checkpoint)


def shape_of(nabla: bool, i2v: bool) -> Shape:
    """Sides multiples of 16 (NABLA: 128, its 8x8 blocks of 16 px patches) up to MAX_SIDE;
    4k+1 frames up to MAX_FRAMES, image-to-video from I2V_LEAST_FRAMES (module docstring)."""
    return Shape(
        frame_step=4,
        side_multiple=128 if nabla else 16,
        max_frames=MAX_FRAMES,
        max_frames_why=MAX_FRAMES_WHY,
        min_frames=I2V_LEAST_FRAMES if i2v else 1,
        min_frames_why=FEW_FRAMES_WHY if i2v else "",
        max_side=MAX_SIDE,
        side_why=MAX_SIDE_WHY,
    )


def checkpoint_shape(checkpoint: Checkpoint, i2v: bool) -> Shape:
    return shape_of(is_nabla(checkpoint), i2v)


def _lite(word: str | None, nabla: bool):
    """Lite checkpoints named `word` (None: any name), NABLA (10s) or not (5s)."""

    def matches(checkpoint: Checkpoint) -> bool:
        named = word is None or word in _name(checkpoint)
        return named and not is_pro(checkpoint) and is_nabla(checkpoint) == nabla

    return matches


def _family(name, title, defaults, nabla, **rest) -> Family:
    rest.setdefault("pipeline_classes", T2V_CLASSES)
    rest.setdefault("batch_size_why", PADDED)
    i2v = bool(rest.get("media_required"))
    return Family(
        name=name,
        title=title,
        shape=shape_of(nabla, i2v),
        shape_for=partial(checkpoint_shape, i2v=i2v),
        defaults=defaults,
        encode_text=encode_kandinsky,
        lanes=NABLA_LANES if nabla else LANES,
        batch_pixel_safe=False,
        after_load=flex_for_nabla,
        **rest,
    )


# diffusers' Kandinsky 5.0 Video docs (kandinsky5_video.md): Lite 512x768, 121 frames (5 s)
# or 241 (10 s models), exported at 24 fps, 50 steps, guidance 5, NEGATIVE; "all nocfg and
# diffusion distilled models should be inferred without CFG (guidance_scale=1.0)", the
# distilled with 16 steps; nocfg keeps 50 (the original repo's config_5s_nocfg.yaml).
FIVE_S, TEN_S = 121, 241
KANDINSKY5_I2V = _family(
    "kandinsky5-i2v",
    "Kandinsky 5.0 I2V Pro (image-to-video: `image` is the first frame; NABLA)",
    # Kandinsky5I2VPipeline's docs example (I2V Pro): 512x768, 121 frames, 50 steps, 5.0.
    model_card_defaults(512, 768, FIVE_S, 24, 50, 5.0, NEGATIVE),
    nabla=True,
    pipeline_classes=I2V_CLASSES,
    batch_size_why=ONE_IMAGE_PER_CALL,
    media_inputs=("image",),
    media_required=("image",),
    hub_hints=("kandinsky-5.0-i2v",),
    notes="at least 17 frames; render with --offload model on one GPU (diffusers' docs, "
    "all Pro models)",
)
KANDINSKY5_PRO = _family(
    "kandinsky5-pro",
    "Kandinsky 5.0 T2V Pro (19B, NABLA)",
    model_card_defaults(768, 1024, FIVE_S, 24, 50, 5.0, NEGATIVE),  # the docs' Pro example
    nabla=True,
    matches=is_pro,
    hub_hints=("kandinsky-5.0-t2v-pro",),
    notes="render with --offload model on one GPU (diffusers' docs, all Pro models)",
)
NABLA_NOTE = "NABLA sparse attention: sides multiples of 128, the flex attention backend"
KANDINSKY5_10S_DISTILLED = _family(
    "kandinsky5-10s-distilled",
    "Kandinsky 5.0 T2V Lite distilled16steps 10s (no CFG, 16 steps; NABLA)",
    model_card_defaults(512, 768, TEN_S, 24, 16, 1.0, NEGATIVE),
    nabla=True,
    matches=_lite("distilled", nabla=True),
    hub_hints=("t2v-lite-distilled16steps-10s",),
    notes=NABLA_NOTE,
)
KANDINSKY5_10S_NOCFG = _family(
    "kandinsky5-10s-nocfg",
    "Kandinsky 5.0 T2V Lite nocfg 10s (CFG-distilled: guidance 1; NABLA)",
    model_card_defaults(512, 768, TEN_S, 24, 50, 1.0, NEGATIVE),
    nabla=True,
    matches=_lite("nocfg", nabla=True),
    hub_hints=("t2v-lite-nocfg-10s",),
    notes=NABLA_NOTE,
)
KANDINSKY5_10S = _family(
    "kandinsky5-10s",
    "Kandinsky 5.0 T2V Lite 10s (sft, pretrain; NABLA)",
    model_card_defaults(512, 768, TEN_S, 24, 50, 5.0, NEGATIVE),
    nabla=True,
    matches=_lite(None, nabla=True),
    hub_hints=("t2v-lite-sft-10s", "t2v-lite-pretrain-10s"),
    notes=NABLA_NOTE,
)
KANDINSKY5_DISTILLED = _family(
    "kandinsky5-distilled",
    "Kandinsky 5.0 T2V Lite distilled16steps 5s (no CFG, 16 steps)",
    model_card_defaults(512, 768, FIVE_S, 24, 16, 1.0, NEGATIVE),
    nabla=False,
    matches=_lite("distilled", nabla=False),
    hub_hints=("t2v-lite-distilled16steps",),
)
KANDINSKY5_NOCFG = _family(
    "kandinsky5-nocfg",
    "Kandinsky 5.0 T2V Lite nocfg 5s (CFG-distilled: guidance 1)",
    model_card_defaults(512, 768, FIVE_S, 24, 50, 1.0, NEGATIVE),
    nabla=False,
    matches=_lite("nocfg", nabla=False),
    hub_hints=("t2v-lite-nocfg",),
)
KANDINSKY5 = _family(
    "kandinsky5",
    "Kandinsky 5.0 T2V Lite 5s (sft, pretrain)",
    model_card_defaults(512, 768, FIVE_S, 24, 50, 5.0, NEGATIVE),
    nabla=False,
    hub_hints=("kandinsky-5.0-t2v", "kandinsky5"),
)

# Variants first: detection takes the first family whose `matches` accepts a checkpoint.
FAMILIES = (KANDINSKY5_I2V, KANDINSKY5_PRO, KANDINSKY5_10S_DISTILLED, KANDINSKY5_10S_NOCFG)
FAMILIES += (KANDINSKY5_10S, KANDINSKY5_DISTILLED, KANDINSKY5_NOCFG, KANDINSKY5)
