"""Tiny random-weight HunyuanVideo, AnimateDiff and Mochi checkpoints, built locally.

Component configs follow diffusers' own tests (tests/pipelines/hunyuan_video, animatediff,
mochi), shrunk; tokenizers are built here, no hub:
- CLIP (AnimateDiff, Hunyuan's tokenizer_2): the real `CLIPTokenizer` over a byte
  vocabulary without merges (every byte a token, `</w>` on a word's last byte);
- Llama (Hunyuan): a byte-level BPE whose merges are learnt from HunyuanVideo's prompt
  template: the template then costs 158 tokens (the real tokenizer: ~95, `crop_start`),
  so the prompt survives the crop to 256 + 95 tokens (with bytes alone the template
  alone would fill them and every prompt would be cropped away);
- T5 (Mochi): the byte tokenizer of the embedded tiny model.

    video_checkpoint_dir("mochi") -> Path of a diffusers directory, built on first use

A module of its own beside tests/support/checkpoints.py (whose BUILDERS test_families.py renders
in one run with its own per-family tables), sharing its T5 and VERSION.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.models.tiny import byte_tokenizer, ensure_built
from tests.support.checkpoints import VERSION, _t5

_SEED = 20261201
# Small enough to keep each checkpoint a few hundred KB; 32 is Mochi's VAE minimum
# (its group norms have 32 groups).
_MOCHI_VAE_CHANNELS = (32, 32, 32, 32)


def clip_tokenizer():
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({char: 2 + i for i, char in enumerate(chars)})
    vocab.update({char + "</w>": 2 + len(chars) + i for i, char in enumerate(chars)})
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def template_tokenizer(template: str):
    """Byte-level BPE (with a BOS, like Llama's) whose merges are learnt from `template`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    specials += ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator([template], trainer=trainer)
    bos = core.token_to_id("<s>")
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )


def _clip_text_encoder(tokenizer, hidden: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=hidden,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(tokenizer),
        hidden_act="gelu",
        projection_dim=32,
    )
    return CLIPTextModel(config).eval()


def hunyuan_transformer(**extra):
    """The tiny HunyuanVideo transformer (the I2V builder adds its image condition type)."""
    from diffusers import HunyuanVideoTransformer3DModel

    config = dict(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=10,
        num_layers=1,
        num_single_layers=1,
        num_refiner_layers=1,
        patch_size=1,
        patch_size_t=1,
        guidance_embeds=True,
        text_embed_dim=16,
        pooled_projection_dim=8,
        rope_axes_dim=(2, 4, 4),
    )
    return HunyuanVideoTransformer3DModel(**(config | extra))


def hunyuan():
    import torch
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
    )
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import DEFAULT_PROMPT_TEMPLATE
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(_SEED)
    tokenizer = template_tokenizer(DEFAULT_PROMPT_TEMPLATE["template"].replace("{}", ""))
    tokenizer_2 = clip_tokenizer()
    llama = LlamaConfig(
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        hidden_size=16,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=3,  # the pipeline reads the third-last hidden state
        vocab_size=len(tokenizer),
        hidden_act="gelu",
        max_position_embeddings=512,
    )
    transformer = hunyuan_transformer()
    vae = hunyuan_vae(latent_channels=4)
    return HunyuanVideoPipeline(
        text_encoder=LlamaModel(llama).eval(),
        tokenizer=tokenizer,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder_2=_clip_text_encoder(tokenizer_2, hidden=8),
        tokenizer_2=tokenizer_2,
    )


def animatediff():
    import torch
    from diffusers import (
        AnimateDiffPipeline,
        AutoencoderKL,
        DDIMScheduler,
        MotionAdapter,
        UNet2DConditionModel,
    )

    torch.manual_seed(_SEED)
    tokenizer = clip_tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=(8, 8),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=8,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=2,
    )
    motion_adapter = MotionAdapter(
        block_out_channels=(8, 8),
        motion_layers_per_block=1,
        motion_norm_num_groups=2,
        motion_num_attention_heads=4,
        motion_max_seq_length=32,  # as the released v1.5 adapters
    )
    # The scheduler settings AnimateDiff's docs use with SD 1.5.
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="linear",
        clip_sample=False,
        timestep_spacing="linspace",
        steps_offset=1,
    )
    return AnimateDiffPipeline(
        vae=vae,
        text_encoder=_clip_text_encoder(tokenizer, hidden=8),
        tokenizer=tokenizer,
        unet=unet,
        motion_adapter=motion_adapter,
        scheduler=scheduler,
        feature_extractor=None,
        image_encoder=None,
    )


def mochi():
    import torch
    from diffusers import (
        AutoencoderKLMochi,
        FlowMatchEulerDiscreteScheduler,
        MochiPipeline,
        MochiTransformer3DModel,
    )

    torch.manual_seed(_SEED)
    tokenizer = byte_tokenizer()
    transformer = MochiTransformer3DModel(
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=2,
        pooled_projection_dim=16,
        in_channels=12,
        out_channels=None,
        qk_norm="rms_norm",
        text_embed_dim=32,
        time_embed_dim=4,
        activation_fn="swiglu",
        max_sequence_length=256,  # the pipeline's text length
    )
    vae = AutoencoderKLMochi(
        latent_channels=12,
        out_channels=3,
        encoder_block_out_channels=_MOCHI_VAE_CHANNELS,
        decoder_block_out_channels=_MOCHI_VAE_CHANNELS,
        layers_per_block=(1, 1, 1, 1, 1),
    )
    return MochiPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=_t5(tokenizer),
        tokenizer=tokenizer,
        transformer=transformer,
    )


BUILDERS = {"hunyuan": hunyuan, "animatediff": animatediff, "mochi": mochi}


def video_checkpoint_dir(name: str) -> Path:
    """The tiny `name` checkpoint's directory, built once per cache (PROMPTREEL_HOME)."""
    return ensure_built(f"test-{name}-{VERSION}", BUILDERS[name])


def hunyuan_vae(latent_channels: int):
    """HunyuanVideo's VAE, shrunk (also Kandinsky 5's: tests/support/new_families)."""
    from diffusers import AutoencoderKLHunyuanVideo

    return AutoencoderKLHunyuanVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        act_fn="silu",
        norm_num_groups=4,
        scaling_factor=0.476986,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
        mid_block_add_attention=True,
    )
