"""Tiny random-weight SkyReels-V2 checkpoints: text-to-video, diffusion forcing,
image-to-video and first-last-frame (FLF2V).

As diffusers' tests/pipelines/skyreels_v2/ build them: the tiny Wan checkpoints' UMT5
encoder, byte tokenizer, Wan VAE (and CLIP image encoder for I2V) from
tests/support/checkpoints.py, a SkyReelsV2Transformer3DModel with the tiny Wan
transformer's config (pipeline/models/tiny.py), and the UniPC flow scheduler of diffusers'
conversion script (scripts/convert_skyreelsv2_to_diffusers.py) with the README's shift
(8.0 T2V, 5.0 I2V). The diffusion-forcing transformer has DF-1.3B-540P's fps embedding
(inject_sample_info), so fps moves its pixels as on that checkpoint.
"""

from __future__ import annotations

from tests.support.new_families import SEED, Case


def parts(inject_sample_info: bool, shift: float, i2v: str = "") -> dict:
    """The components of a SkyReels-V2 pipeline (i2v "2.1" or "flf2v": with the image
    encoder; FLF2V: a position embedding over both images' CLIP tokens)."""
    import torch
    from diffusers import SkyReelsV2Transformer3DModel, UniPCMultistepScheduler

    from pipeline.models.tiny import tiny_wan_transformer
    from tests.support.checkpoints import _wan, _wan_i2v

    keep = ("tokenizer", "text_encoder", "vae", "image_encoder", "image_processor")
    wan = _wan_i2v(i2v) if i2v else _wan("2.1")
    found = {name: part for name, part in wan.components.items() if name in keep}
    torch.manual_seed(SEED)
    channels = dict(in_channels=36, out_channels=16, image_dim=4) if i2v else {}
    if i2v == "flf2v":  # as _wan_i2v's: two images of 32 * 32 patches + CLS
        channels["pos_embed_seq_len"] = 2 * (32 * 32 + 1)
    config = dict(tiny_wan_transformer(**channels).config)
    config["inject_sample_info"] = inject_sample_info
    found["transformer"] = SkyReelsV2Transformer3DModel.from_config(config)
    found["scheduler"] = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift
    )
    return found


def text_to_video():
    from diffusers import SkyReelsV2Pipeline

    return SkyReelsV2Pipeline(**parts(False, 8.0))


def diffusion_forcing():
    from diffusers import SkyReelsV2DiffusionForcingPipeline

    return SkyReelsV2DiffusionForcingPipeline(**parts(True, 8.0))


def image_to_video(variant: str = "2.1"):
    from diffusers import SkyReelsV2ImageToVideoPipeline

    return SkyReelsV2ImageToVideoPipeline(**parts(False, 5.0, i2v=variant))


I2V_NEGATIVE = dict(guidance_scale=5.0, negative_prompt="blurry, static")
NEGATIVE = dict(guidance_scale=6.0, negative_prompt="blurry, static")
NO_NEGATIVE = dict(guidance_scale=1.0)
CASES = (
    Case(
        name="skyreels-v2",
        family="skyreels-v2",
        build=text_to_video,
        shape=dict(height=32, width=32, num_frames=9),
        with_negative=NEGATIVE,
        without_negative=NO_NEGATIVE,
    ),
    Case(
        name="skyreels-v2-df",
        family="skyreels-v2-df",
        build=diffusion_forcing,
        shape=dict(height=32, width=32, num_frames=9),
        with_negative=NEGATIVE,
        without_negative=NO_NEGATIVE,
    ),
    Case(
        name="skyreels-v2-i2v",
        family="skyreels-v2-i2v",
        build=image_to_video,
        shape=dict(height=32, width=32, num_frames=9),
        with_negative=I2V_NEGATIVE,
        without_negative=NO_NEGATIVE,
    ),
    Case(
        name="skyreels-v2-flf2v",
        family="skyreels-v2-flf2v",
        build=lambda: image_to_video("flf2v"),
        shape=dict(height=32, width=32, num_frames=9),
        with_negative=I2V_NEGATIVE,
        without_negative=NO_NEGATIVE,
    ),
)
