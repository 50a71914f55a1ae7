"""Tiny Kandinsky 5.0 checkpoints: Lite 5s, Lite 10s (NABLA) and I2V (regular attention,
small and fast; the real I2V Pro is NABLA, which the 10s case covers), shrunk from
diffusers' tests/pipelines/kandinsky5 configs.

- Qwen2.5-VL: a 1-layer text model over `template_tokenizer`, whose merges are learnt from
  the pipeline's own prompt template: its prefix costs 221 tokens, so the pipeline's crop of
  the first 128 leaves the prompt whole (with bytes alone the 780-character template
  would cost 780 tokens and crowd the prompt out of the 128 + 512 kept).
- CLIP: `clip_tokenizer` and the small CLIP text model of tests/support/video_checkpoints.
- The transformer as the released Lite configs (visual_cond: the latents carry a condition
  and a mask channel), except that Kandinsky5Modulation zero-inits its layers: with those
  every gate is 0 and no text could reach the pixels, so they get random weights here.
- NABLA (attention_type "nabla") with the Lite 10s settings of the original repo
  (configs/config_10s_sft.yaml: P 0.9, wT 11, wH 3, wW 3, add_sta, topcdf); its sides
  are multiples of 128, so its rows are 128x128.
"""

from __future__ import annotations

from tests.support.new_families import SEED, Case
from tests.support.video_checkpoints import hunyuan_vae

COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer")
COMPONENTS += ("text_encoder_2", "tokenizer_2", "scheduler")
TEXT_DIM, CLIP_DIM, LATENT = 16, 8, 4
# The original repo's Lite 10s attention settings (configs/config_10s_*.yaml).
NABLA = dict(
    attention_type="nabla",
    attention_P=0.9,
    attention_wT=11,
    attention_wW=3,
    attention_wH=3,
    attention_add_sta=True,
    attention_method="topcdf",
)


def _qwen(vocab: int):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokens = dict(bos_token_id=1, eos_token_id=2, pad_token_id=3)  # template_tokenizer's
    text = dict(
        hidden_size=TEXT_DIM,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=vocab,
        max_position_embeddings=1024,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        tie_word_embeddings=True,
        **tokens,
    )
    vision = dict(depth=1, hidden_size=8, intermediate_size=8, num_heads=2)
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision | {"out_hidden_size": TEXT_DIM},
        vocab_size=vocab,
        image_token_id=0,  # no images reach the text encoder: any id in the vocabulary
        video_token_id=0,
        vision_start_token_id=0,
        vision_end_token_id=0,
        **tokens,
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def _transformer(attention: dict):
    import torch
    from diffusers import Kandinsky5Transformer3DModel

    transformer = Kandinsky5Transformer3DModel(
        in_visual_dim=LATENT,
        out_visual_dim=LATENT,
        in_text_dim=TEXT_DIM,
        in_text_dim2=CLIP_DIM,
        time_dim=8,
        patch_size=(1, 2, 2),
        model_dim=16,
        ff_dim=16,
        num_text_blocks=1,
        num_visual_blocks=1,
        axes_dims=(2, 2, 4),
        visual_cond=True,
        **attention,
    )
    for module in transformer.modules():  # zero-initialised gates: text would not count
        if type(module).__name__ == "Kandinsky5Modulation":
            torch.nn.init.normal_(module.out_layer.weight, std=0.5)
            torch.nn.init.normal_(module.out_layer.bias, std=0.5)
    return transformer


def build(class_name: str = "Kandinsky5T2VPipeline", attention: dict | None = None):
    import diffusers
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    from tests.support.video_checkpoints import (
        _clip_text_encoder,
        clip_tokenizer,
        template_tokenizer,
    )

    torch.manual_seed(SEED)
    cls = getattr(diffusers, class_name)
    template = cls(**dict.fromkeys(COMPONENTS)).prompt_template  # the pipeline's own
    tokenizer = template_tokenizer(template.replace("{}", ""))
    tokenizer_2 = clip_tokenizer()
    return cls(
        transformer=_transformer(attention or {}),
        vae=hunyuan_vae(LATENT),
        text_encoder=_qwen(len(tokenizer)),
        tokenizer=tokenizer,
        text_encoder_2=_clip_text_encoder(tokenizer_2, hidden=CLIP_DIM),
        tokenizer_2=tokenizer_2,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),  # Lite 10s' scheduler_scale
    )


WITH_NEGATIVE = dict(guidance_scale=5.0, negative_prompt="blurry, static")
WITHOUT_NEGATIVE = dict(guidance_scale=1.0)  # nocfg / distilled: no negative pass
CASES = (
    Case(
        "kandinsky5",
        "kandinsky5",
        build,
        dict(height=32, width=48, num_frames=5),
        WITH_NEGATIVE,
        WITHOUT_NEGATIVE,
    ),
    Case(
        "kandinsky5-10s",
        "kandinsky5-10s",
        lambda: build(attention=NABLA),
        dict(height=128, width=128, num_frames=5),
        WITH_NEGATIVE,
        WITHOUT_NEGATIVE,
    ),
    Case(  # regular attention (NABLA is the 10s case's): 32x32; 17 frames, I2V's least
        "kandinsky5-i2v",
        "kandinsky5-i2v",
        lambda: build("Kandinsky5I2VPipeline"),
        dict(height=32, width=32, num_frames=17),
        WITH_NEGATIVE,
        WITHOUT_NEGATIVE,
    ),
)
