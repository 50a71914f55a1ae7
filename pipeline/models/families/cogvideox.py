"""CogVideoX 2b / 5b / 1.5: `CogVideoXPipeline`; 5B I2V and 1.5 5B I2V:
`CogVideoXImageToVideoPipeline` (a row's `image` is the first frame); 2b / 5b with a source
video: `CogVideoXVideoToVideoPipeline`.

Frames 8k+1, not 4k+1 (measured with plain diffusers 0.42 on a tiny checkpoint: 5 frames
requested render 8, 13 render 16; 9 and 17 render as asked). The VAE decodes latent
frames in chunks of two and upsamples an odd-length chunk as first frame + rest, an even
one as a whole, so only an odd latent count (F-1)//4+1 decodes to F frames. The 1.5
models (transformer patch_size_t 2) pad the latents for the transformer and drop the
padding before decoding: the same rule; their native 16k+1 (81, 161) is a case of it.
Sides multiples of 16 (VAE 8 x patch 2). The transformer takes exactly 226 text tokens
(`max_sequence_length` 226; 512 fails with a shape error). Its initial noise is drawn in
the prompt embeddings' dtype, so cached embeddings keep the dtype `encode_prompt` returns.

Image-to-video (diffusers 0.42): the transformer takes noise and image latents (in_channels
doubled); text is encoded as above, frames and sides follow the same rules (1.5 pads and
drops latent frames alike). 1.5 is told apart the same way (patch_size_t). CogVideoX-5b-I2V
has learned positional embeddings: its transformer raises on any size but its sample size
(480x720, read from the checkpoint's configs): validate refuses other sizes.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.models.families.base import (
    ONE_IMAGE_PER_CALL,
    VIDEO_TO_VIDEO,
    Checkpoint,
    Family,
    Shape,
    encode_with,
    model_card_defaults,
)

MAX_SEQUENCE_LENGTH = 226  # the transformer's text length (max_text_seq_length)
encode_cogvideox = encode_with(max_sequence_length=MAX_SEQUENCE_LENGTH, names=("prompt_embeds",))
SHAPE = Shape(frame_step=8, side_multiple=16)


def is_v15(checkpoint: Checkpoint) -> bool:
    return checkpoint.config("transformer").get("patch_size_t") is not None


def learned_size_shape(checkpoint: Checkpoint) -> Shape:
    """A transformer with learned positional embeddings (CogVideoX-5b-I2V) raises on any
    size but its sample size (latent sample_height x sample_width, times the VAE's 2**(levels
    - 1) spatial factor): 480x720 for the released checkpoint."""
    config = checkpoint.config("transformer")
    if not config.get("use_learned_positional_embeddings"):
        return SHAPE
    levels = len(checkpoint.config("vae").get("block_out_channels", (0, 0, 0, 0)))
    scale = 2 ** (levels - 1)
    size = (config.get("sample_height", 60) * scale, config.get("sample_width", 90) * scale)
    why = "learned positional embeddings: diffusers renders only the transformer's sample size"
    return replace(SHAPE, fixed_size=size, fixed_size_why=why)


COGVIDEOX_15 = Family(
    name="cogvideox-1.5",
    title="CogVideoX 1.5 text-to-video (patch_size_t 2; 16k+1 frames native)",
    pipeline_classes=("CogVideoXPipeline",),
    shape=SHAPE,
    defaults=model_card_defaults(768, 1360, 81, 16, 50, 6.0),
    encode_text=encode_cogvideox,
    lanes=("taylorseer", "pab", "quantize"),  # attention: its processor calls SDPA itself
    matches=is_v15,
    hub_hints=("cogvideox1.5", "cogvideox-1.5"),
)
COGVIDEOX = Family(
    name="cogvideox",
    title="CogVideoX 2b / 5b text-to-video",
    pipeline_classes=("CogVideoXPipeline",),
    shape=SHAPE,
    defaults=model_card_defaults(480, 720, 49, 8, 50, 6.0),
    encode_text=encode_cogvideox,
    lanes=("taylorseer", "pab", "quantize"),  # attention: its processor calls SDPA itself
    hub_hints=("cogvideox",),
    notes="2b: float16 recommended by its card; 5b and 1.5: bfloat16",
    media_tasks=(("video", "cogvideox-v2v"),),
)
# CogVideoXVideoToVideoPipeline on the 2b / 5b text-to-video weights: the frames given are
# VAE-encoded and noised by `strength`; 8k+1 frames render as given (measured: 9 -> 9,
# 17 -> 17; 5 -> 8, 13 -> 16), as for text-to-video.
COGVIDEOX_V2V = Family(
    name="cogvideox-v2v",
    title="CogVideoX 2b / 5b video-to-video (a source `video`, `strength`)",
    pipeline_classes=("CogVideoXVideoToVideoPipeline",),
    shape=SHAPE,
    defaults=model_card_defaults(480, 720, 49, 8, 50, 6.0),
    encode_text=encode_cogvideox,
    lanes=("taylorseer", "pab", "quantize"),  # attention: its processor calls SDPA itself
    notes="a `cogvideox` (2b / 5b) checkpoint renders its rows that give a `video` with this "
    "pipeline, on the same weights (model spec + `#v2v`)",
    **VIDEO_TO_VIDEO,
)
I2V_CLASSES = ("CogVideoXImageToVideoPipeline",)
# __call__ encodes one image per prompt of the call: media rows render one per call.
I2V = dict(
    pipeline_classes=I2V_CLASSES,
    shape=SHAPE,
    encode_text=encode_cogvideox,
    lanes=("taylorseer", "pab", "quantize"),  # attention: its processor calls SDPA itself
    batch_pixel_safe=False,
    batch_size_why=ONE_IMAGE_PER_CALL,
    media_inputs=("image",),
    media_required=("image",),
)
COGVIDEOX_15_I2V = Family(
    name="cogvideox-1.5-i2v",
    title="CogVideoX 1.5 5B I2V image-to-video (patch_size_t 2, ofs embedding)",
    # THUDM/CogVideoX1.5-5B-I2V model card: 81 frames, 50 steps, guidance 6, 16 fps; the
    # size is free (the card's 1360x768 is the transformer's sample size).
    defaults=model_card_defaults(768, 1360, 81, 16, 50, 6.0),
    matches=is_v15,
    hub_hints=("cogvideox1.5-5b-i2v",),
    **I2V,
)
COGVIDEOX_I2V = Family(
    name="cogvideox-i2v",
    title="CogVideoX 5B I2V image-to-video (480x720 only)",
    # THUDM/CogVideoX-5b-I2V model card: 480x720, 49 frames, 50 steps, guidance 6, 8 fps.
    defaults=model_card_defaults(480, 720, 49, 8, 50, 6.0),
    hub_hints=("cogvideox-5b-i2v",),
    notes="renders only at its sample size, 480x720 (learned positional embeddings): rows "
    "at another size are refused at validate; media rows without a size get it",
    shape_for=learned_size_shape,
    **I2V,
)
FAMILIES = (COGVIDEOX_15_I2V, COGVIDEOX_I2V, COGVIDEOX_15, COGVIDEOX, COGVIDEOX_V2V)
