"""Tiny random-weight LTX-2 checkpoints: `LTX2Pipeline` shaped like LTX-2.3 (gated attention,
cross-attention modulation, per-modality connector projections, a vocoder with bandwidth
extension to 48 kHz) and `LTX2ImageToVideoPipeline` shaped like LTX-2.0 (prompt-embedding
projections in the transformer, a plain 24 kHz vocoder).

Configs follow diffusers' tests/pipelines/ltx2 shrunk further, except where the shape rules
live: the video VAE has the real 32x spatial and 8x temporal compression (patch 4 and the
real down/up block types), and the audio VAE, vocoder and transformer keep the real
16 kHz / hop 160 mel timing, so the tiny audio is as long as a real clip's. The text
encoder is a tiny Gemma 3 (with a vision tower: the pipelines take
Gemma3ForConditionalGeneration) over the byte-level tokenizer of the embedded tiny model;
the 2.0 transformer has 30 blocks, so the STG block its family passes (29) exists and
spatio-temporal guidance perturbs a real block; the 2.3 one has 4 (its 29 blocks would
take 2.3 s a render: the default block 28 is absent, the STG pass runs unperturbed).
"""

from __future__ import annotations

from tests.support.new_families import SEED, Case

TEXT_HIDDEN = 16
TEXT_LAYERS = 2
LAYERS = {"2.3": 4, "2.0": 30}
SHAPE = dict(height=64, width=64, num_frames=9)


def _gemma3(vocab_size: int):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    config = Gemma3Config(
        text_config=dict(
            vocab_size=vocab_size,
            hidden_size=TEXT_HIDDEN,
            intermediate_size=32,
            num_hidden_layers=TEXT_LAYERS,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            max_position_embeddings=2048,
            sliding_window=64,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=8,
            patch_size=2,
        ),
        mm_tokens_per_image=4,
        boi_token_index=vocab_size - 3,
        eoi_token_index=vocab_size - 2,
        image_token_index=vocab_size - 1,
    )
    return Gemma3ForConditionalGeneration(config)


def _parts(version: str) -> dict:
    """The components of a tiny LTX-2.0 ("2.0") or LTX-2.3 ("2.3") pipeline."""
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE

    from pipeline.models.tiny import byte_tokenizer

    v23 = version == "2.3"
    torch.manual_seed(SEED)
    tokenizer = byte_tokenizer()
    tokenizer.padding_side = "left"  # Gemma's; the pipeline sets it anyway
    text_encoder = _gemma3(len(tokenizer) + 3)
    modern = dict(gated_attn=v23, cross_attn_mod=v23, audio_gated_attn=v23)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,  # audio latent channels 2 x mel bins 8 / 4
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        audio_cross_attn_mod=v23,
        num_layers=LAYERS[version],
        caption_channels=TEXT_HIDDEN,
        rope_type="split",
        use_prompt_embeddings=not v23,
        perturbed_attn=v23,
        **modern,
    )
    connectors = LTX2TextConnectors(
        caption_channels=TEXT_HIDDEN,
        text_proj_in_factor=TEXT_LAYERS + 1,
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=8,
        video_gated_attn=v23,
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=4 if v23 else 8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=8,
        audio_gated_attn=v23,
        connector_rope_base_seq_len=32,
        rope_type="split",
        per_modality_projections=v23,
        video_hidden_dim=16,
        audio_hidden_dim=8,
        proj_bias=v23,
    )
    vae = AutoencoderKLLTX2Video(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 16, 32),  # halved per up block, as the real (256, 512, 1024)
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        upsample_residual=(True, True, True),
        decoder_causal=False,
        decoder_spatial_padding_mode="zeros" if v23 else "reflect",  # as the real ones
        spatial_compression_ratio=32,  # as the real configs: the class's own count says 64
        temporal_compression_ratio=8,
    )
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        resolution=32,
        latent_channels=2,
        mel_bins=8,
    )  # 16 kHz, hop 160: 100 mel frames a second, as the real one
    mel_channels = audio_vae.config.output_channels * audio_vae.config.mel_bins
    if v23:  # 16 kHz vocoder (160 samples a mel frame), then x3 to 48 kHz
        vocoder = LTX2VocoderWithBWE(
            in_channels=mel_channels,
            hidden_channels=64,
            upsample_kernel_sizes=[11, 4, 4, 4, 4, 4],
            upsample_factors=[5, 2, 2, 2, 2, 2],
            resnet_kernel_sizes=[3],
            resnet_dilations=[[1, 3]],
            bwe_in_channels=2 * 8,
            bwe_hidden_channels=64,
            bwe_upsample_kernel_sizes=[12, 11, 4, 4, 4],
            bwe_upsample_factors=[6, 5, 2, 2, 2],
            bwe_resnet_kernel_sizes=[3],
            bwe_resnet_dilations=[[1, 3]],
            num_mel_channels=8,
        )
    else:  # 24 kHz: 240 samples a mel frame
        vocoder = LTX2Vocoder(
            in_channels=mel_channels,
            hidden_channels=64,
            upsample_kernel_sizes=[12, 11, 4, 4, 4],
            upsample_factors=[6, 5, 2, 2, 2],
            resnet_kernel_sizes=[3],
            resnet_dilations=[[1, 3]],
        )
    return dict(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )


def ltx2():
    from diffusers import LTX2Pipeline

    return LTX2Pipeline(**_parts("2.3"))


def ltx2_0_i2v():
    from diffusers import LTX2ImageToVideoPipeline

    return LTX2ImageToVideoPipeline(**_parts("2.0"))


# Without a negative: guidance 1 for the video AND the audio (audio_guidance_scale's
# default 7 alone turns classifier-free guidance on). The image rows skip the H.264
# re-compression (image_crf 0): PyAV is not a promptreel dependency.
NO_CFG = dict(guidance_scale=1.0, audio_guidance_scale=1.0)
CASES = (
    Case("ltx2", "ltx2", ltx2, SHAPE, dict(guidance_scale=3.0), NO_CFG),
    Case(
        "ltx2.0-i2v",
        "ltx2.0-i2v",
        ltx2_0_i2v,
        SHAPE,
        dict(guidance_scale=3.0, image_crf=0),
        dict(NO_CFG, image_crf=0),
    ),
)
