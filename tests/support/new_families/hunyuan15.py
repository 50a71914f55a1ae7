"""Tiny HunyuanVideo 1.5 checkpoints: text-to-video and image-to-video (issue 19).

Configs shrunk from diffusers' tests/pipelines/hunyuan_video1_5, but with the real VAE's
16x spatial and 4x temporal compression (4 blocks), so the shape rules measured here are
the real checkpoints' (4k+1 frames, sides multiples of 16). Tokenizers are built locally:
- Qwen2.5-VL's: the byte tokenizer with a Qwen-style chat template. The pipeline crops the
  first 108 tokens (the real template's system prompt); here the system prompt costs ~600
  bytes, so the crop keeps its tail and every prompt survives whole;
- ByT5's: `ByT5Tokenizer()`, which needs no files (the glyph encoder reads only quoted
  text: a prompt without quotes gets zero embeddings).
The guider is diffusers' ClassifierFreeGuidance at the model card's 6.0. The image-to-video
transformer's target_size 64 makes its 16:9 size 48x80 (the real 480p: 640 -> 480x848).
"""

from __future__ import annotations

from tests.support.new_families import SEED, Case

# The Qwen2-VL chat template's shape (system, user, then the assistant's generation prompt).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEXT_DIM, GLYPH_DIM, IMAGE_DIM = 16, 32, 12
TARGET_SIZE = 64  # I2V: the image's aspect picks one of the sizes of this area (48x80 at 16:9)


def qwen_tokenizer():
    from pipeline.models.tiny import byte_tokenizer

    tokenizer = byte_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _components(image_embed_dim: int, task_type: str) -> dict:
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15Transformer3DModel,
    )
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import (
        ByT5Tokenizer,
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        T5Config,
        T5EncoderModel,
    )

    tokenizer, tokenizer_2 = qwen_tokenizer(), ByT5Tokenizer()
    torch.manual_seed(SEED)
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=9,  # latents, the condition latents and their mask
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        num_refiner_layers=1,
        mlp_ratio=2.0,
        text_embed_dim=TEXT_DIM,
        text_embed_2_dim=GLYPH_DIM,
        image_embed_dim=image_embed_dim,
        rope_axes_dim=(2, 2, 4),
        target_size=TARGET_SIZE,
        task_type=task_type,
    )
    vae = AutoencoderKLHunyuanVideo15(
        latent_channels=4,
        block_out_channels=(8, 8, 8, 8),  # 4 downsamplings: 16x like the real VAE
        layers_per_block=1,
        spatial_compression_ratio=16,
        temporal_compression_ratio=4,
        downsample_match_channel=False,
        upsample_match_channel=False,
    )
    qwen = Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_DIM,
        intermediate_size=16,
        num_hidden_layers=2,  # the pipeline reads the third-last hidden state
        num_attention_heads=2,
        num_key_value_heads=2,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        rope_theta=1000000.0,
        max_position_embeddings=2048,
        bos_token_id=None,
        eos_token_id=1,
        pad_token_id=0,
    )
    t5 = T5Config(
        vocab_size=len(tokenizer_2),
        d_model=GLYPH_DIM,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
    )
    return dict(
        # Saved in bfloat16 (loaded as float32): diffusers 0.42 fixes the glyph projection's
        # width at 2048 (4.2M of its 4.3M weights), 17 MB in float32.
        transformer=transformer.to(torch.bfloat16).eval(),
        vae=vae.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        text_encoder=Qwen2_5_VLTextModel(qwen).eval(),
        tokenizer=tokenizer,
        text_encoder_2=T5EncoderModel(t5).eval(),
        tokenizer_2=tokenizer_2,
        guider=ClassifierFreeGuidance(guidance_scale=6.0),
    )


def t2v():
    from diffusers import HunyuanVideo15Pipeline

    return HunyuanVideo15Pipeline(**_components(IMAGE_DIM, "t2v"))


def i2v():
    import torch
    from diffusers import HunyuanVideo15ImageToVideoPipeline
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    components = _components(IMAGE_DIM, "i2v")
    torch.manual_seed(SEED + 1)
    siglip = SiglipVisionConfig(
        hidden_size=IMAGE_DIM,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    return HunyuanVideo15ImageToVideoPipeline(
        **components,
        image_encoder=SiglipVisionModel(siglip).eval(),
        feature_extractor=processor,
    )


# Rows render at guidance 6 (the guider's CFG: a negative prompt and a second pass) and at
# guidance 1 (CFG off: one pass, no negative encoded).
WITH_NEGATIVE = dict(guidance_scale=6.0, negative_prompt="blurry, static")
WITHOUT_NEGATIVE = dict(guidance_scale=1.0)
CASES = (
    Case(
        name="hunyuan1.5",
        family="hunyuan1.5-480p",
        build=t2v,
        shape=dict(height=32, width=48, num_frames=5),
        with_negative=WITH_NEGATIVE,
        without_negative=WITHOUT_NEGATIVE,
    ),
    Case(
        name="hunyuan1.5-i2v",
        family="hunyuan1.5-i2v-480p",
        build=i2v,
        shape=dict(height=48, width=80, num_frames=5),
        with_negative=WITH_NEGATIVE,
        without_negative=WITHOUT_NEGATIVE,
    ),
)
