"""Tiny random-weight checkpoints of each supported family, built locally in a few lines.

Component configs follow diffusers' own tests (tests/pipelines/<family>/); tokenizers are
built locally (a byte-level BPE over a `tokenizers` vocabulary), weights come from a fixed
seed. Each is saved with save_pretrained (safetensors) under the PROMPTREEL_HOME/XDG
cache once and loaded through DiffusionPipeline.from_pretrained like a real checkpoint.

    checkpoint_dir("ltx")   -> Path of a diffusers directory, built on first use

Add a family: one builder function and one line in BUILDERS (bench/ reuses these too).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.models.tiny import byte_tokenizer, ensure_built, tiny_wan_transformer

VERSION = "v1"  # bump when a builder changes, so caches rebuild
_SEED = 20261201


def _t5(tokenizer, umt5: bool = False):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config = dict(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
    )
    if umt5:
        return UMT5EncoderModel(UMT5Config(**config)).eval()
    return T5EncoderModel(T5Config(**config)).eval()


def _wan(variant: str):
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
    )

    torch.manual_seed(_SEED)
    tokenizer = byte_tokenizer()
    text_encoder = _t5(tokenizer, umt5=True)
    ti2v = variant == "ti2v"
    z = 48 if ti2v else 16
    vae_extra = (
        dict(
            in_channels=12,
            out_channels=12,
            is_residual=True,
            patch_size=2,
            scale_factor_spatial=16,
            latents_mean=[0.0] * z,
            latents_std=[1.0] * z,
        )
        if ti2v
        else {}
    )
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=z,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        **vae_extra,
    )

    def transformer():
        return tiny_wan_transformer(in_channels=z, out_channels=z)

    extra = {}
    if variant == "a14b":
        extra = dict(transformer_2=transformer(), boundary_ratio=0.875)
    elif ti2v:
        extra = dict(expand_timesteps=True)
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer(),
        **extra,
    )


def _wan_vace():
    """WanVACEPipeline as diffusers' tests build it: the Wan 2.1 components with a VACE
    transformer (control blocks after layers 0 and 1; 96 = 16 + 16 latent channels of the
    control video's kept and reactive parts + 64 of the 8x8-folded mask)."""
    import torch
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    parts = _wan("2.1").components
    torch.manual_seed(_SEED)
    parts["transformer"] = WanVACETransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
        out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
        vace_layers=[0, 1], vace_in_channels=96,
    )  # fmt: skip
    parts.pop("transformer_2", None)
    return WanVACEPipeline(**{k: v for k, v in parts.items() if k != "boundary_ratio"})


def _wan_i2v(variant: str):
    """WanImageToVideoPipeline as diffusers' tests build it: 2.1 with a CLIP image encoder
    (image_dim; FLF2V: a position embedding over both images' tokens), 2.2 A14B with two
    experts and no image encoder."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(_SEED)
    tokenizer = byte_tokenizer()
    a14b = variant == "a14b"

    def transformer():
        return tiny_wan_transformer(
            in_channels=36,  # noise 16 + mask 4 + the image's latents 16
            out_channels=16,
            image_dim=None if a14b else 4,
            # FLF2V: first and last image, 32 * 32 patches + CLS each.
            pos_embed_seq_len=2 * (32 * 32 + 1) if variant == "flf2v" else None,
        )

    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )  # fmt: skip
    parts = dict(
        tokenizer=tokenizer,
        text_encoder=_t5(tokenizer, umt5=True),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer(),
    )
    if a14b:
        parts |= dict(transformer_2=transformer(), boundary_ratio=0.875)
    else:
        vision = CLIPVisionConfig(
            hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2,
            image_size=32, intermediate_size=16, patch_size=1,
        )  # fmt: skip
        parts |= dict(
            image_encoder=CLIPVisionModel(vision).eval(),
            image_processor=CLIPImageProcessor(crop_size=32, size=32),
        )
    return WanImageToVideoPipeline(**parts)


def _ltx(condition: bool):
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(_SEED)
    tokenizer = byte_tokenizer()
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=True,  # so decode_timestep / decode_noise_scale matter
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    cls = LTXConditionPipeline if condition else LTXPipeline
    return cls(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=_t5(tokenizer),
        tokenizer=tokenizer,
        transformer=transformer,
    )


def _cogvideox():
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(_SEED)
    tokenizer = byte_tokenizer()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        sample_width=4,
        sample_height=4,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,  # the real models' text length
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    return CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=_t5(tokenizer),
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(),
    )


def _ltx_i2v():
    """LTXImageToVideoPipeline: the components of the `ltx` builder (diffusers' I2V test
    uses the same configs); its timestep-conditioned VAE makes decode_* matter."""
    from diffusers import LTXImageToVideoPipeline

    return LTXImageToVideoPipeline(**_ltx(condition=False).components)


def _cogvideox_i2v(v15: bool):
    """CogVideoXImageToVideoPipeline as diffusers' I2V test builds it: the transformer takes
    noise and image latents (in_channels doubled), rotary positions; 5B I2V adds learned
    positions at its sample size (16x16 here), 1.5 I2V patch_size_t 2 and an ofs embedding
    (ofs_embed_dim must equal time_embed_dim: the two embeddings are summed)."""
    import torch
    from diffusers import CogVideoXImageToVideoPipeline, CogVideoXTransformer3DModel

    parts = _cogvideox().components
    torch.manual_seed(_SEED)
    version = dict(patch_size_t=2, ofs_embed_dim=2, patch_bias=False) if v15 else {}
    parts["transformer"] = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16,  # RoPE: a multiple of 16
        in_channels=8, out_channels=4, time_embed_dim=2, text_embed_dim=32, num_layers=1,
        sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=226,
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=not v15,
        **version,
    )  # fmt: skip
    return CogVideoXImageToVideoPipeline(**parts)


def _hunyuan_i2v(condition: str = "token_replace"):
    """HunyuanVideoImageToVideoPipeline (HunyuanVideo-I2V: token_replace, embedded
    guidance; or the 33-channel latent_concat one, whose transformer takes noise, image
    latents and a mask: 2 * 4 + 1 channels here): the `hunyuan` components with a LLaVA
    text encoder that reads the image.
    The default template's 576 image tokens must equal the vision tower's patches: 24x24
    images, patch 1 (CLS dropped). The tokenizer learns merges from the I2V template and
    has `<image>` as one token; the template costs ~180 tokens (crop_start: 103), so the
    prompt survives the crop."""
    import torch
    from diffusers import HunyuanVideoImageToVideoPipeline
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_image2video import (
        DEFAULT_PROMPT_TEMPLATE,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from tests.support.video_checkpoints import hunyuan, hunyuan_transformer, template_tokenizer

    parts = hunyuan().components
    torch.manual_seed(_SEED)
    # "system" made one token, so `<image>` sits at the template's image_emb_start (5).
    text = DEFAULT_PROMPT_TEMPLATE["template"].replace("{}", "") + "\nsystem" * 8
    tokenizer = template_tokenizer(text)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    llama = LlamaConfig(
        bos_token_id=1, eos_token_id=2, pad_token_id=3, hidden_size=16, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=3, vocab_size=len(tokenizer),
        hidden_act="gelu", max_position_embeddings=1024,
    )  # fmt: skip
    vision = CLIPVisionConfig(
        hidden_size=8, intermediate_size=16, projection_dim=8, num_attention_heads=2,
        num_hidden_layers=2, image_size=24, patch_size=1,
    )  # fmt: skip
    llava = LlavaConfig(
        vision_config=vision,
        text_config=llama,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        pad_token_id=3,
    )
    channels = 2 * 4 + 1 if condition == "latent_concat" else 4
    parts["transformer"] = hunyuan_transformer(image_condition_type=condition, in_channels=channels)
    parts |= dict(
        tokenizer=tokenizer,
        text_encoder=LlavaForConditionalGeneration(llava).eval(),
        image_processor=CLIPImageProcessor(crop_size=24, size=24),
    )
    return HunyuanVideoImageToVideoPipeline(**parts)


# name -> builder of a diffusers pipeline; the family each is detected as, for tests.
BUILDERS = {
    "wan2.1": lambda: _wan("2.1"),
    "wan2.2-a14b": lambda: _wan("a14b"),
    "wan2.2-ti2v": lambda: _wan("ti2v"),
    "ltx": lambda: _ltx(condition=False),
    "ltx-condition": lambda: _ltx(condition=True),
    "cogvideox": _cogvideox,
}
# Image-to-video checkpoints: rows give an `image` (tests/e2e/test_media_rows.py).
I2V_BUILDERS = {
    "wan2.1-i2v": lambda: _wan_i2v("2.1"),
    "wan2.1-flf2v": lambda: _wan_i2v("flf2v"),
    "wan2.2-i2v-a14b": lambda: _wan_i2v("a14b"),
    "ltx-i2v": _ltx_i2v,
    "cogvideox-i2v": lambda: _cogvideox_i2v(v15=False),
    "cogvideox-1.5-i2v": lambda: _cogvideox_i2v(v15=True),
    "hunyuan-i2v": _hunyuan_i2v,
    "hunyuan-i2v-33ch": lambda: _hunyuan_i2v("latent_concat"),
    "wan-vace": _wan_vace,
}
DETECTED_FAMILY = {
    "wan2.1": "wan",
    "wan2.2-a14b": "wan2.2-a14b",
    "wan2.2-ti2v": "wan2.2-ti2v",
    "ltx": "ltx",
    "ltx-condition": "ltx-condition",
    "cogvideox": "cogvideox",
}


def checkpoint_dir(name: str) -> Path:
    """The tiny checkpoint's directory, built and cached on first use."""
    builder = BUILDERS.get(name) or I2V_BUILDERS[name]
    return ensure_built(f"test-{name}-{VERSION}", builder)
