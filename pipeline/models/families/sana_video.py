"""Sana Video: `SanaVideoPipeline` (SANA-Video 2B 480p with the Wan VAE; 2B 720p with
LTX-2's VAE); image-to-video on the same weights (a row's `image` is the first frame):
`SanaImageToVideoPipeline`.

Measured on the tiny checkpoints (tests/support/new_families/sana_video.py), diffusers 0.42:

- `__call__` names the frame count `frames` (call_names). It floors frames to the VAE's
  k*t+1 with no warning ((F-1)//t + 1 latent frames): 480p (Wan VAE, t=4) 6, 7, 8 -> 5,
  10, 12 -> 9; 720p (LTX-2 VAE, t=8) 10..16 -> 9. It raises on sides not multiples of 32
  (`check_inputs`). Validate refuses both first.
- `use_resolution_binning=True` by default: the size asked for is replaced by the nearest
  aspect-ratio bin (ASPECT_RATIO_480_BIN for transformer sample_size 30, 720_BIN for 22;
  anything else raises "Invalid sample size"), rendered there, then bilinear-resized and
  centre-cropped back to the size asked for. So a default call's pixels are not a render
  at the size asked for: 64x112 renders a full 480x832 clip (80x the latents, 30 s instead
  of 0.4 s on the tiny model) and downscales it; 1080x1920 would render 480x832 and
  upscale. And 7 of the 11 480p bins (624x624, 528x768, 560x720, ...) are not multiples of
  32, so a default 480p call at those aspect ratios raises in `check_inputs` (a square
  request: "divisible by 32 but are 624 and 624"). Every call here passes
  `use_resolution_binning=False` (call_args): the clip is rendered at exactly the size
  asked for, which validate keeps to multiples of 32. At a bin's own size (the model
  card's 480x832) binning changes nothing: on and off gave identical pixels.
- Text: Gemma2, `max_sequence_length` 300, `clean_caption` False; `_text_preprocessing`
  lower-cases and strips every prompt ("A Fox " and "a fox" render the same pixels). The
  prompt gets `complex_human_instruction` (a ~1,160-character chat-style prefix, no chat
  template) in front, is tokenised padded to max_length = instruction tokens + 298, and
  the embedding keeps BOS plus the last 299 positions: the prompt's first 299 tokens (the
  instruction's trailing space merges into the prompt's first token), the rest of a
  longer prompt cut (real Gemma: roughly 1,200 characters of English). The prompt tokens
  attend to the instruction (causal), so it conditions every render.
- Padding is to that fixed max_length, never to the batch's longest: a prompt's embedding
  and pixels are the same alone and beside a longer batch-mate (measured equal), so
  batching is pixel-safe.
- The negative prompt is encoded WITHOUT the instruction (`complex_human_instruction=
  False`, 300 tokens), a prompt with it: one text has two encodings, and the renderer's
  cache runs one `encode_text` per text for prompts and negatives alike, so `encode_text`
  is None and the pipeline encodes both in the call (a Gemma2-2B pass over some 850
  tokens per item, small beside 50 steps of the DiT). Measured: `encode_prompt` with the
  call's instruction, clean_caption and max_sequence_length equals the call's prompt
  embedding, and with complex_human_instruction=None the call's negative one.
- The negative prompt is used only above guidance 1 (CFG); at 1 it does not move pixels.
- `eta` does nothing: the shipped DPMSolverMultistepScheduler's `step` takes none.
- Output in [0, 1] (output_type "np"); frames out == frames asked for when k*t+1.
- A CUDA out-of-memory in the VAE decode is caught by `__call__` with only a warning, and
  the call then fails with UnboundLocalError (`video`), which reads as a non-retriable
  error: on a small GPU render with --vae-tiling (read in diffusers 0.42, not measured).

Image-to-video (`SanaImageToVideoPipeline`): the same rules; the image's VAE latents
replace the first latent frame (timestep 0 there). It conditions the whole call on one
image: media rows render alone. Loaded from a text-to-video checkpoint, as diffusers'
docs do, it keeps the checkpoint's own scheduler (the docs swap in
`FlowMatchEulerDiscreteScheduler.from_config(..., flow_shift=8.0)`, but flow_shift is not
a FlowMatchEuler argument and is dropped: that scheduler runs at shift 1).
"""

from __future__ import annotations

from pipeline.models.families.base import (
    ONE_IMAGE_PER_CALL,
    Checkpoint,
    Family,
    Shape,
    always,
    model_card_defaults,
)

# The model card (Efficient-Large-Model/SANA-Video_2B_480p_diffusers) and diffusers' Sana-Video
# docs examples: 480x832, frames=81, guidance_scale=6, 50 steps, exported at fps=16, and
# this negative prompt (`__call__`'s own default is "").
NEGATIVE = (
    "A chaotic sequence with misshapen, deformed limbs in heavy motion blur, sudden "
    "disappearance, jump cuts, jerky movements, rapid shot changes, frames out of sync, "
    "inconsistent character shapes, temporal artifacts, jitter, and ghosting effects, "
    "creating a disorienting visual experience."
)
NOTES = (
    "rendered at exactly the size asked for (use_resolution_binning=False); prompts are "
    "lower-cased and get Sana's complex_human_instruction; the model card appends "
    "' motion score: 30.' to prompts (write it in the prompt to use it)"
)
LTX2_VAE = "AutoencoderKLLTX2Video"


def has_ltx2_vae(checkpoint: Checkpoint) -> bool:
    """SANA-Video 2B 720p: LTX-2's VAE (32x spatial, 8x temporal, 128 channels)."""
    return (checkpoint.index.get("vae") or [None, None])[-1] == LTX2_VAE


def variant(name: str, title: str, shape: Shape, defaults: dict, **rest) -> tuple[Family, ...]:
    """A SanaVideoPipeline family and the SanaImageToVideoPipeline family its checkpoints
    render `image` rows with (model spec + `#i2v`), on the same weights."""
    common = dict(
        shape=shape,
        defaults=defaults,
        encode_text=None,  # a negative is encoded otherwise than a prompt: see the docstring
        attention_masks=True,  # the transformer's cross-attention takes the text mask
        call_names=(("num_frames", "frames"),),
        call_args=(("use_resolution_binning", False),),  # exact size, no hidden resize
        matches=rest.pop("matches", always),
    )
    i2v = Family(
        name=f"{name}-i2v",
        title=f"{title}, image-to-video (an `image` as the first frame)",
        pipeline_classes=("SanaImageToVideoPipeline",),
        batch_pixel_safe=False,
        batch_size_why=ONE_IMAGE_PER_CALL,
        media_inputs=("image",),
        media_required=("image",),
        notes=f"a `{name}` checkpoint renders its rows that give an `image` with this "
        "pipeline, on the same weights (model spec + `#i2v`); " + NOTES,
        **common,
    )
    t2v = Family(
        name=name,
        title=f"{title}, text-to-video",
        pipeline_classes=("SanaVideoPipeline",),
        media_tasks=(("image", i2v.name),),
        notes=NOTES,
        **common,
        **rest,
    )
    return t2v, i2v


# LTX-2's VAE: latents of 8 frames (8k+1 frames, floored silently) and 32x32 pixels.
SANA_VIDEO_720P, SANA_VIDEO_720P_I2V = variant(
    "sana-video-720p",
    "SANA-Video 2B 720p (LTX-2 VAE)",
    Shape(frame_step=8, side_multiple=32),
    # The 720p card was not readable offline: the 480p card's call at the 720p bin of the
    # same aspect ratio (ASPECT_RATIO_720_BIN "0.57": 704x1280); 81 frames is 8k+1.
    model_card_defaults(704, 1280, 81, 16, 50, 6.0, NEGATIVE),
    matches=has_ltx2_vae,
    hub_hints=("sana-video_2b_720p", "sana-video-2b-720p"),
)
# The Wan VAE's 4x temporal compression; `check_inputs` wants sides divisible by 32.
SANA_VIDEO, SANA_VIDEO_I2V = variant(
    "sana-video",
    "SANA-Video 2B 480p (Wan VAE)",
    Shape(frame_step=4, side_multiple=32),
    model_card_defaults(480, 832, 81, 16, 50, 6.0, NEGATIVE),
    hub_hints=("sana-video", "sana_video"),
)
# Variants first: detection takes the first family whose `matches` accepts a checkpoint.
FAMILIES = (SANA_VIDEO_720P, SANA_VIDEO_720P_I2V, SANA_VIDEO, SANA_VIDEO_I2V)
