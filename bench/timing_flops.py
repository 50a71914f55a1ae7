"""Published configs, latent shapes, inputs and FLOP counts for bench.timing_model.

FLOPs do not depend on weight values, so everything here works from a config dict.

Analytic count (`dit_flops`), per transformer forward, per sample, times the batch (2 for
CFG: cond + uncond). A multiply-add is 2 FLOPs; N = video tokens after patching, L = text
tokens, D = model width, F = FFN width, C = width of the context that cross-attention's
k/v read (D for Wan after its text projection, cross_attention_dim for LTX), T = the text
encoder's width (4096), P_in / P_out = in / out channels x patch volume:
- every linear counts 2 * rows * in * out:
  - per block: self-attention q, k, v, out    2 * N * 4 * D^2
  -            cross-attention q, out          2 * N * 2 * D^2
  -            cross-attention k, v (text)     2 * L * 2 * C * D
  -            FFN (two linears)               2 * N * 2 * D * F
  - once: patch embedding 2 * N * P_in * D (a strided conv is a linear over patches), the
    output head 2 * N * D * P_out, the text projection 2 * L * (T * D + D * D), the time
    MLP 2 * (256 * D + D * D + 6 * D * D) (per sample, not per token);
- per block, the attention matmuls: scores and values, 4 * N^2 * D for self-attention and
  4 * N * L * D for cross-attention.
Neglected, as FlopCounterMode also neglects them: elementwise work (norms, RoPE, GELU,
softmax, modulation, biases, residuals). The text encoder (UMT5 / T5) is not part of a
step: it runs once per prompt.

Measured count (`counted_flops`): torch.utils.flop_counter.FlopCounterMode over the same
forward run on the meta device (shapes only, no arithmetic, no memory), with SDPA forced
to its math path so attention shows up as the two bmm it is. It counts mm / addmm / bmm /
convolution, so it must agree with the analytic count to a fraction of a percent. For
the VAEs (convolutions with causal padding, caches and upsamplers) there is no analytic
formula here: their FLOPs are this measured count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Wan-AI/Wan2.1-T2V-1.3B-Diffusers, transformer/config.json.
WAN_1_3B = dict(
    patch_size=[1, 2, 2],
    num_attention_heads=12,
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=8960,
    num_layers=30,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    image_dim=None,
    added_kv_proj_dim=None,
    rope_max_seq_len=1024,
)
# Wan-AI/Wan2.1-T2V-14B-Diffusers: wider and deeper, otherwise the same.
WAN_14B = WAN_1_3B | dict(num_attention_heads=40, ffn_dim=13824, num_layers=40)
# vae/config.json of both Wan 2.1 checkpoints (= AutoencoderKLWan's defaults).
WAN_VAE = dict(
    base_dim=96,
    z_dim=16,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=2,
    attn_scales=[],
    temperal_downsample=[False, True, True],
    dropout=0.0,
)
# Lightricks/LTX-Video 0.9.0 (= LTXVideoTransformer3DModel's defaults in diffusers 0.42).
LTX_0_9 = dict(
    in_channels=128,
    out_channels=128,
    patch_size=1,
    patch_size_t=1,
    num_attention_heads=32,
    attention_head_dim=64,
    cross_attention_dim=2048,
    num_layers=28,
    activation_fn="gelu-approximate",
    qk_norm="rms_norm_across_heads",
    norm_elementwise_affine=False,
    norm_eps=1e-6,
    caption_channels=4096,
    attention_bias=True,
    attention_out_bias=True,
)
# Its VAE (= AutoencoderKLLTXVideo's defaults: 0.9.0 has no timestep conditioning).
LTX_VAE_0_9 = dict(
    latent_channels=128,
    block_out_channels=[128, 256, 512, 512],
    decoder_block_out_channels=[128, 256, 512, 512],
    layers_per_block=[4, 3, 3, 3, 4],
    decoder_layers_per_block=[4, 3, 3, 3, 4],
    spatio_temporal_scaling=[True, True, True, False],
    decoder_spatio_temporal_scaling=[True, True, True, False],
    timestep_conditioning=False,
    patch_size=4,
    patch_size_t=1,
)


@dataclass(frozen=True)
class Family:
    """Latent rules: channels, temporal and spatial compression, transformer patch."""

    channels: int
    time_factor: int
    space_factor: int
    patch: tuple[int, int, int]
    text_tokens: int  # the pipeline's max_sequence_length (prompts are padded to it)


FAMILIES = {
    "wan": Family(16, 4, 8, (1, 2, 2), 512),
    "ltx": Family(128, 8, 32, (1, 1, 1), 128),
}


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str  # "transformer" | "vae"
    cls: str  # the diffusers class
    family: str
    config: dict = field(hash=False)
    source: str = ""
    vae: str | None = None  # the VAE that decodes this transformer's latents


SPECS = {
    s.name: s
    for s in (
        Spec(
            "wan-1.3b",
            "transformer",
            "WanTransformer3DModel",
            "wan",
            WAN_1_3B,
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            vae="wan-vae",
        ),
        Spec(
            "wan-14b",
            "transformer",
            "WanTransformer3DModel",
            "wan",
            WAN_14B,
            "Wan-AI/Wan2.1-T2V-14B-Diffusers",
            vae="wan-vae",
        ),
        Spec("wan-vae", "vae", "AutoencoderKLWan", "wan", WAN_VAE, "Wan2.1 VAE"),
        Spec(
            "ltx",
            "transformer",
            "LTXVideoTransformer3DModel",
            "ltx",
            LTX_0_9,
            "Lightricks/LTX-Video 0.9.0",
            vae="ltx-vae",
        ),
        Spec("ltx-vae", "vae", "AutoencoderKLLTXVideo", "ltx", LTX_VAE_0_9, "LTX-Video 0.9.0"),
    )
}


def parse_shape(text: str) -> tuple[int, int, int]:
    """'832x480x81' -> (width, height, frames)."""
    width, height, frames = (int(v) for v in text.lower().split("x"))
    return width, height, frames


def latent_shape(family: str, width: int, height: int, frames: int) -> tuple[int, ...]:
    """(channels, frames, height, width) of the latent a video of this size has."""
    fam = FAMILIES[family]
    space = fam.space_factor * max(fam.patch[1:])
    if (frames - 1) % fam.time_factor or height % space or width % space:
        raise ValueError(
            f"{family} needs frames = {fam.time_factor}k+1 and sides divisible by {space}"
        )
    return (
        fam.channels,
        (frames - 1) // fam.time_factor + 1,
        height // fam.space_factor,
        width // fam.space_factor,
    )


def dit_dims(spec: Spec, config: dict) -> dict:
    """The widths `dit_flops` needs, read from a transformer config."""
    c = config
    if spec.family == "wan":
        width = c["num_attention_heads"] * c["attention_head_dim"]
        patch = math.prod(c["patch_size"])
        return dict(
            D=width,
            F=c["ffn_dim"],
            C=width,
            T=c["text_dim"],
            layers=c["num_layers"],
            P_in=c["in_channels"] * patch,
            P_out=c["out_channels"] * patch,
        )
    width = c["num_attention_heads"] * c["attention_head_dim"]
    patch = c["patch_size_t"] * c["patch_size"] ** 2
    return dict(
        D=width,
        F=4 * width,
        C=c["cross_attention_dim"],
        T=c["caption_channels"],
        layers=c["num_layers"],
        P_in=c["in_channels"] * patch,
        P_out=c["out_channels"] * patch,
    )


def dit_flops(spec: Spec, config: dict, latent: tuple[int, ...], batch: int) -> dict:
    """Analytic FLOPs of one transformer forward (see the module docstring), by part."""
    d = dit_dims(spec, config)
    D, F, C, T, P_in, P_out = d["D"], d["F"], d["C"], d["T"], d["P_in"], d["P_out"]
    pt, ph, pw = FAMILIES[spec.family].patch
    _, frames, height, width = latent
    N = (frames // pt) * (height // ph) * (width // pw)
    L = FAMILIES[spec.family].text_tokens
    block_linear = 2 * N * 4 * D * D + 2 * N * 2 * D * D + 2 * L * 2 * C * D + 2 * N * 2 * D * F
    block_attention = 4 * N * N * D + 4 * N * L * D
    once = 2 * N * P_in * D + 2 * N * D * P_out
    once += 2 * L * (T * D + D * D) + 2 * (256 * D + D * D + 6 * D * D)
    parts = dict(
        linear=batch * d["layers"] * block_linear,
        attention=batch * d["layers"] * block_attention,
        embed_and_head=batch * once,
    )
    return parts | dict(total=sum(parts.values()), tokens=N, text_tokens=L)


def inputs(spec: Spec, latent: tuple[int, ...], batch: int, device, dtype, seed: int = 0):
    """(callable of the model, kwargs) for one forward, as the pipelines call it."""
    import torch

    def tensor(*shape):
        if torch.device(device).type == "meta":
            return torch.empty(*shape, device=device, dtype=dtype)
        gen = torch.Generator(device).manual_seed(seed)
        return torch.randn(*shape, generator=gen, device=device, dtype=dtype)

    channels, frames, height, width = latent
    if spec.kind == "vae":  # one video: the pipeline decodes per prompt batch
        return "decode", dict(z=tensor(batch, *latent), return_dict=False)
    text = tensor(batch, FAMILIES[spec.family].text_tokens, 4096)
    timestep = torch.full((batch,), 500.0, device=device)
    if spec.family == "wan":
        return "forward", dict(
            hidden_states=tensor(batch, *latent),
            timestep=timestep,
            encoder_hidden_states=text,
            return_dict=False,
        )
    return "forward", dict(  # LTX takes its latent packed into tokens
        hidden_states=tensor(batch, frames * height * width, channels),
        encoder_hidden_states=text,
        timestep=timestep,
        encoder_attention_mask=torch.ones(batch, text.shape[1], device=device),
        num_frames=frames,
        height=height,
        width=width,
        rope_interpolation_scale=(8 / 25, 32, 32),  # LTXPipeline's, at 25 fps
        return_dict=False,
    )


def meta_model(spec: Spec, config: dict):
    import diffusers
    import torch

    with torch.device("meta"):
        return getattr(diffusers, spec.cls)(**config).eval()


def counted_flops(spec: Spec, config: dict, latent: tuple[int, ...], batch: int) -> int:
    """FlopCounterMode's count of one forward / decode, run on the meta device."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = meta_model(spec, config)
    method, kwargs = inputs(spec, latent, batch, "meta", torch.float32)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), sdpa_kernel([SDPBackend.MATH]), counter:
        getattr(model, method)(**kwargs)
    return counter.get_total_flops()
