"""Tiny random-weight SanaVideoPipelines (SANA-Video 2B 480p and 720p layouts), built locally.

Component configs follow diffusers' tests/pipelines/sana_video/test_sana_video.py, with the
released checkpoints' settings where they change what the pipeline does
(scripts/convert_sana_video_to_diffusers.py): the transformer's sample_size (30: the 480p
aspect-ratio bins; 22: the 720p ones) and patches, the VAE (Wan's for 480p; LTX-2's for
720p, at its real 32x/8x compression) and a flow DPM-Solver++ scheduler, flow_shift 8.
The Gemma tokenizer is a byte-level BPE (template_tokenizer) whose merges are learnt from Sana's
complex_human_instruction: the instruction costs 502 tokens with its 400-token vocabulary;
the pipeline's crop window grows with it, so every prompt keeps its first 299 tokens.
The same checkpoints render image-to-video rows (`#i2v`: SanaImageToVideoPipeline).
"""

from __future__ import annotations

from pipeline.models.tiny import tiny_wan_vae
from tests.support.new_families import SEED, Case

CAPTION_DIM = 8  # Gemma2's hidden size = the transformer's caption_channels


def instruction() -> str:
    """The text `__call__` puts in front of every prompt (its complex_human_instruction)."""
    import inspect

    from diffusers import SanaVideoPipeline

    call = inspect.signature(SanaVideoPipeline.__call__).parameters
    return "\n".join(call["complex_human_instruction"].default)


def build(vae, latent_channels: int, sample_size: int, patch_size: tuple[int, int, int]):
    """The tiny pipeline around `vae()` (called after the seed, like every component)."""
    import torch
    from diffusers import (
        DPMSolverMultistepScheduler,
        SanaVideoPipeline,
        SanaVideoTransformer3DModel,
    )
    from transformers import Gemma2Config, Gemma2Model

    from tests.support.video_checkpoints import template_tokenizer

    torch.manual_seed(SEED)
    tokenizer = template_tokenizer(instruction())
    text_encoder = Gemma2Model(
        Gemma2Config(
            head_dim=16,
            hidden_size=CAPTION_DIM,
            intermediate_size=64,
            max_position_embeddings=8192,
            num_attention_heads=2,
            num_hidden_layers=1,
            num_key_value_heads=2,
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            attn_implementation="eager",
        )
    ).eval()
    autoencoder = vae()
    transformer = SanaVideoTransformer3DModel(
        in_channels=latent_channels,
        out_channels=latent_channels,
        num_attention_heads=2,
        attention_head_dim=12,
        num_layers=2,
        num_cross_attention_heads=2,
        cross_attention_head_dim=12,
        cross_attention_dim=24,
        caption_channels=CAPTION_DIM,
        mlp_ratio=2.5,
        sample_size=sample_size,  # the released checkpoints': it picks the aspect-ratio bins
        patch_size=patch_size,
        norm_elementwise_affine=False,
        norm_eps=1e-6,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,
    )
    scheduler = DPMSolverMultistepScheduler(
        flow_shift=8.0, use_flow_sigmas=True, prediction_type="flow_prediction"
    )
    return SanaVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=autoencoder,
        transformer=transformer,
        scheduler=scheduler,
    )


def ltx2_vae():
    """LTX-2's VAE layout at its real compression (32x spatial by a 4x patch and three 2x
    stages, 8x temporal), tiny channels; the pipeline reads both ratios from its config."""
    from diffusers import AutoencoderKLLTX2Video

    return AutoencoderKLLTX2Video(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        patch_size=4,
        patch_size_t=1,
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )


def sana_video():
    """SANA-Video 2B 480p: Wan VAE, patches of 1x2x2, sample_size 30."""
    return build(tiny_wan_vae, latent_channels=16, sample_size=30, patch_size=(1, 2, 2))


def sana_video_720p():
    """SANA-Video 2B 720p: LTX-2's VAE, patches of 1x1x1, sample_size 22."""
    return build(ltx2_vae, latent_channels=8, sample_size=22, patch_size=(1, 1, 1))


CASES = (
    Case(
        name="sana-video",
        family="sana-video",
        build=sana_video,
        shape=dict(height=32, width=64, num_frames=9),
        with_negative=dict(guidance_scale=6.0, negative_prompt="blurry, static"),
        without_negative=dict(guidance_scale=1.0),
    ),
    Case(
        name="sana-video-720p",
        family="sana-video-720p",
        build=sana_video_720p,
        shape=dict(height=64, width=96, num_frames=9),  # 32 px sides: a 1x1 latent, too small
        with_negative=dict(guidance_scale=6.0, negative_prompt="blurry, static"),
        without_negative=dict(guidance_scale=1.0),
    ),
)
