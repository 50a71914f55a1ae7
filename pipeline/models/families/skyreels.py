"""SkyReels-V2 (Wan 2.1 architecture: UMT5 text encoder, Wan VAE, SkyReelsV2Transformer3DModel,
UniPC flow scheduler): text-to-video `SkyReelsV2Pipeline`; diffusion forcing
`SkyReelsV2DiffusionForcingPipeline` (a clip longer than `base_num_frames` is rendered in
overlapping windows); image-to-video `SkyReelsV2ImageToVideoPipeline` (a row's `image`).

Measured on the tiny checkpoints (tests/support/new_families/skyreels.py), diffusers 0.42:

- Every pipeline rounds num_frames to 4k+1 with only a warning (6, 7 -> 5, 8 -> 9) and
  raises on sides not multiples of 16; validate refuses both first. 1 frame works; frames
  out == frames in when 4k+1. Output in [0, 1].
- Text: `encode_prompt` is Wan's (UMT5, prompts ftfy-cleaned, zero-padded to
  max_sequence_length, no mask): `__call__` uses 512, `encode_prompt` defaults to 226, so the
  cache encodes at 512 (wan.encode_wan). Padding is to that fixed length: a prompt's
  embedding is the same alone and beside a longer one. The negative prompt is used only
  above guidance 1 (at 1 it does not move pixels).
- Text-to-video batches like Wan: a batch of 2 differs from two calls of 1 by float noise
  only (3e-7), and the embeddings do not depend on batch-mates: batch_pixel_safe.

Diffusion forcing (measured; the rules were checked on 576 combinations of num_frames,
base_num_frames, overlap_history and causal_block_size, all predicted exactly):

- `fps` enters the transformer only where its config has `inject_sample_info` (DF-1.3B-540P:
  an fps embedding; the 14B DF checkpoints have none), and only as "16 or not": fps 16 and
  24 render different pixels, 24 and 30 the same. The call gets the row's fps (call_fps).
- With such an fps embedding a batch above 1 cannot render (diffusers 0.42: the embedding is
  repeated frame-major and added batch-major, "size of tensor a (3) must match the size of
  tensor b (6)"); and `addnoise_condition` draws its noise from torch's GLOBAL generator
  (`randn_like`) over the whole batch. So each row renders alone (batch_pixel_safe False).
- `addnoise_condition` > 0 noises the frames a window repeats from the one before, with
  `torch.randn_like`: the pixels depended on whatever the process drew before (two equal
  calls differed by 2e-6, and in uint8). Before each call the global generator is seeded
  with the row's seed (`prepare_call`; nothing else in the call draws from it): a row
  renders the same pixels whatever ran before it, and `torch.manual_seed(seed)` before a
  plain call reproduces them. It has no effect on clips of at most base_num_frames.
- `causal_block_size` is stored into the transformer's config (`_set_ar_attention`) and
  kept: a later call without it used the earlier call's blocks (measured: pixels of the
  earlier block size). Every call here passes it (default 1, the checkpoints' own
  num_frame_per_block; explicit 1 renders exactly as leaving it out on a fresh pipeline).
- Windows, in latent frames (L = (num_frames-1)//4+1, likewise B for base_num_frames and O
  for overlap_history): a clip with num_frames <= base_num_frames is one window of L
  (base_num_frames and overlap_history do nothing); a longer one is a window of B, then
  windows of at most B that repeat the last O latent frames of the one before; the last
  holds the remainder. A window whose length causal_block_size does not divide leaves its
  trailing latent frames as the initial noise (measured: equal to it) or fails ("stack
  expects a non-empty TensorList"); overlap_history >= base_num_frames divides by zero or
  renders fewer frames than asked (17 asked, 9 out). validate refuses those rows
  (row_problems). When causal_block_size does not divide O, diffusers repeats fewer frames
  (with a warning); the clip keeps its length. base_num_frames and overlap_history are kept
  to 4k+1: (n-1)//4+1 would silently floor others.
- `__call__`'s `prompt` has no default (the other SkyReels pipelines default it to None):
  a call with cached prompt_embeds passes prompt=None (call_args).
- `ar_step` > 0 (asynchronous) takes more transformer passes: (windows' blocks - 1) x ar_step
  more per window.

Image-to-video (Wan 2.1 I2V's layout: the image's CLIP hidden states, its VAE latents and a
mask as 20 more input channels): the same frame and side rules (8 -> 9 with a warning).
diffusers repeats the one image's embedding over a batch: the image conditions the whole
call, so media rows render alone. FLF2V checkpoints (the same class; a transformer with
`pos_embed_seq_len`, a position embedding over BOTH images' CLIP tokens) need
`last_image` as well (without: a shape error); an I2V transformer takes no second image
(given one: a shape error).

Defaults: the model card (SkyworkAI/SkyReels-V2 README): 540P checkpoints render 544x960,
97 frames, 24 fps, guidance 6.0 (T2V) / 5.0 (I2V), 50 steps; diffusion forcing: 30 steps
(generate_video_df.py and diffusers' DF docs example), base_num_frames 97 (121 for 720P),
overlap_history 17, addnoise_condition 0 (20 recommended for long clips), ar_step 0. The
negative prompt is Wan's (the README scripts' Chinese one; here its English form, as wan.py).
The README's scheduler shift (8.0 T2V, 5.0 I2V) lives in the checkpoint's scheduler config:
promptreel renders with the checkpoint's scheduler as saved.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.models.families.base import (
    ONE_IMAGE_PER_CALL,
    Family,
    Param,
    Shape,
    finite_at_least,
    model_card_defaults,
)
from pipeline.models.families.wan import NEGATIVE, encode_wan, is_flf2v

TEMPORAL = 4  # the Wan VAE's temporal compression: latent frames = (frames - 1) // 4 + 1
SHAPE = Shape(frame_step=TEMPORAL, side_multiple=16)  # check_inputs: sides divisible by 16


def four_k_plus_one(low: int):
    return lambda v: np.isfinite(v) & (v >= low) & ((v - 1) % TEMPORAL == 0)


BASE_NUM_FRAMES = Param(
    "base_num_frames",
    default=97,
    expected="4k+1 frames, at least 5 (97 for 540P checkpoints, 121 for 720P)",
    ok=four_k_plus_one(5),
    kind="int",
    help="frames of one diffusion-forcing window: a longer clip renders in overlapping windows",
)
OVERLAP_HISTORY = Param(
    "overlap_history",
    default=17,
    expected="4k+1 frames (17 or 37 recommended)",
    ok=four_k_plus_one(1),
    kind="int",
    help="frames each window repeats from the one before (clips longer than base_num_frames)",
)
ADDNOISE_CONDITION = Param(
    "addnoise_condition",
    default=0.0,
    expected="a finite number >= 0 (20 recommended for long clips, at most 50)",
    ok=finite_at_least(0.0),
    help="noise on the frames a window repeats (clips longer than base_num_frames)",
)
AR_STEP = Param(
    "ar_step",
    default=0,
    expected="a whole number >= 0 (0: synchronous; 5: asynchronous)",
    ok=finite_at_least(0.0),
    kind="int",
    help="steps each block of frames lags the one before (asynchronous; more passes)",
)
CAUSAL_BLOCK_SIZE = Param(
    "causal_block_size",
    default=1,
    expected="a whole number >= 1 (5 with ar_step 5)",
    ok=finite_at_least(1.0),
    kind="int",
    help="latent frames per causal block; must divide every window's latent frames",
)
DF_PARAMS = (BASE_NUM_FRAMES, OVERLAP_HISTORY, ADDNOISE_CONDITION, AR_STEP, CAUSAL_BLOCK_SIZE)
SEED_BITS = 2**32  # what torch's CPU generator takes of a seed (schema.SEED_SPACE)


def seed_global_generator(_pipe, item) -> None:
    """`addnoise_condition` noise comes from torch's global generator: seeded with the row's
    seed before its call, it depends on the row alone, not on what ran before."""
    import torch

    torch.manual_seed(item.seed % SEED_BITS)


def latent(frames):
    return (frames - 1) // TEMPORAL + 1


def windows(frames, base, overlap):
    """Latent frames of the first and the last window (diffusers' n_iter arithmetic)."""
    length, first, repeat = latent(frames), latent(base), latent(overlap)
    long = frames > base
    stride = np.maximum(first - repeat, 1)
    more = (length - first - 1) // stride + 1  # windows after the first
    last = np.where(long, length - more * stride, length)
    return np.where(long, first, length), last


def window_problems(values: dict) -> list[tuple[int, str, str]]:
    """Refuse what diffusers' windowing would fail on or silently cut (docstring)."""
    frames, base = values["num_frames"].astype(np.int64), values["base_num_frames"].astype(np.int64)
    overlap = values["overlap_history"].astype(np.int64)
    block = values["causal_block_size"].astype(np.int64)
    long = frames > base
    problems = []
    for i in np.flatnonzero(long & (overlap >= base)).tolist():
        problems.append(
            (
                i,
                "overlap_history",
                f"fewer frames than base_num_frames ({base[i]}) when num_frames ({frames[i]}) "
                f"exceeds it (nearest: {base[i] - TEMPORAL}), got {overlap[i]}",
            )
        )
    first, last = windows(frames, base, np.minimum(overlap, base - TEMPORAL))
    bad = ((first % block) != 0) | ((last % block) != 0)
    for i in np.flatnonzero(bad & ~(long & (overlap >= base))).tolist():
        common = math.gcd(int(first[i]), int(last[i]))
        fits = " or ".join(str(d) for d in range(1, common + 1) if common % d == 0)
        if long[i]:
            what = (
                f"num_frames {frames[i]} renders in windows of base_num_frames {base[i]} "
                f"overlapping by overlap_history {overlap[i]}: windows of {first[i]} and "
                f"{last[i]} latent frames"
            )
        else:
            what = f"num_frames {frames[i]} is {first[i]} latent frames"
        problems.append(
            (
                i,
                "causal_block_size",
                f"a block size dividing each window's latent frames ({what}; valid: {fits}), "
                f"got {block[i]}",
            )
        )
    return problems


SKYREELS_V2_DF = Family(
    name="skyreels-v2-df",
    title="SkyReels-V2 diffusion forcing (DF 1.3B / 14B; long clips in overlapping windows)",
    pipeline_classes=("SkyReelsV2DiffusionForcingPipeline",),
    shape=SHAPE,
    # SkyworkAI/SkyReels-V2 README + generate_video_df.py (30 steps, guidance 6, fps 24),
    # diffusers' SkyReelsV2DiffusionForcingPipeline docs example (544x960, 97 frames, 30 steps).
    defaults=model_card_defaults(544, 960, 97, 24, 30, 6.0, NEGATIVE),
    encode_text=encode_wan,
    params=DF_PARAMS,
    batch_pixel_safe=False,
    batch_size_why="each row renders alone: DF-1.3B's fps embedding fails on a batch above "
    "1, and addnoise_condition draws one noise for the whole batch",
    call_fps="fps",
    prepare_call=seed_global_generator,
    # `__call__(self, prompt, ...)` takes no default prompt: cached embeddings need prompt=None.
    call_args=(("prompt", None),),
    row_problems=window_problems,
    hub_hints=("skyreels-v2-df",),
    notes="num_frames > base_num_frames renders overlapping windows (overlap_history); "
    "causal_block_size must divide every window's latent frames; fps moves pixels only on "
    "checkpoints with an fps embedding (DF-1.3B-540P: 16 vs other); 720P checkpoints: "
    "720x1280 with base_num_frames 121",
)


def _image_to_video(name, title, inputs, **rest) -> Family:
    """A SkyReelsV2ImageToVideoPipeline family: one media row per call."""
    return Family(
        name=name,
        title=title,
        pipeline_classes=("SkyReelsV2ImageToVideoPipeline",),
        shape=SHAPE,
        # SkyworkAI/SkyReels-V2 README (I2V): 544x960, 97 frames, 24 fps, 50 steps, guidance 5.
        defaults=model_card_defaults(544, 960, 97, 24, 50, 5.0, NEGATIVE),
        encode_text=encode_wan,
        batch_pixel_safe=False,
        batch_size_why=ONE_IMAGE_PER_CALL,
        media_inputs=inputs,
        media_required=inputs,
        **rest,
    )


SKYREELS_V2_FLF2V = _image_to_video(
    "skyreels-v2-flf2v",
    "SkyReels-V2 FLF2V (first and last frame: image and last_image)",
    ("image", "last_image"),
    matches=is_flf2v,
    hub_hints=("skyreels-v2-flf2v",),
)
SKYREELS_V2_I2V = _image_to_video(
    "skyreels-v2-i2v",
    "SkyReels-V2 image-to-video (I2V 1.3B / 14B; CLIP image encoder)",
    ("image",),
    hub_hints=("skyreels-v2-i2v",),
)
SKYREELS_V2 = Family(
    name="skyreels-v2",
    title="SkyReels-V2 text-to-video (T2V 14B 540P / 720P)",
    pipeline_classes=("SkyReelsV2Pipeline",),
    shape=SHAPE,
    # SkyworkAI/SkyReels-V2 README (T2V): 544x960, 97 frames, 24 fps, 50 steps, guidance 6.0.
    defaults=model_card_defaults(544, 960, 97, 24, 50, 6.0, NEGATIVE),
    encode_text=encode_wan,
    hub_hints=("skyreels-v2",),  # not bare "skyreels": SkyReels-V1 is a HunyuanVideo model
    notes="720P checkpoints: 720x1280, 121 frames",
)
# Variants first: FLF2V checkpoints are SkyReelsV2ImageToVideoPipeline too.
FAMILIES = (SKYREELS_V2_DF, SKYREELS_V2_FLF2V, SKYREELS_V2_I2V, SKYREELS_V2)
