"""A tiny random-weight Cosmos Predict 2.5 checkpoint (`Cosmos2_5_PredictBasePipeline`).

Configs follow diffusers' tests/pipelines/cosmos/test_cosmos2_5_predict.py, shrunk, with
the real 2.5 transformer's layout where it costs nothing (max_size, rope_scale, no
learnable position embedding, the cross-attention projection of the concatenated Qwen
hidden states), and the UniPC flow scheduler of diffusers' conversion script
(scripts/convert_cosmos_to_diffusers.py, save_pipeline_cosmos2_5_predict). Two changes:

- concat_padding_mask=False: with True (the real checkpoints) the transformer resizes its
  padding mask with torchvision, which this project's CPU torch cannot load; the mask is
  all zeros and only adds a channel, so the tiny model runs the same code otherwise;
- the tokenizer is the byte tokenizer with Qwen's `<|im_start|>`/`<|im_end|>` and a
  chat template reading the pipeline's content lists (the template and system prompt
  cost 93 tokens, so a prompt keeps ~419 of the 512 the pipeline pads and truncates to).

The pipeline is built with promptreel's pass-through safety checker (its `__init__`
would otherwise build the real guardrail, which needs `cosmos_guardrail` and the hub),
then saved with `safety_checker` null in model_index.json, as a checkpoint without one.
"""

from __future__ import annotations

from pipeline.models.tiny import tiny_wan_vae
from tests.support.new_families import SEED, Case

# Qwen2-VL's chat template, cut to what Cosmos' `_get_prompt_embeds` sends: text parts.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}"
    "{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
HIDDEN, LAYERS = 16, 2  # the text encoder's: the transformer reads HIDDEN * LAYERS channels


def chat_tokenizer():
    from pipeline.models.tiny import byte_tokenizer

    tokenizer = byte_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build():
    import torch
    from diffusers import (
        Cosmos2_5_PredictBasePipeline,
        CosmosTransformer3DModel,
        UniPCMultistepScheduler,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from pipeline.models.families.cosmos_guardrail import PassThroughSafetyChecker

    tokenizer = chat_tokenizer()
    torch.manual_seed(SEED)
    config = Qwen2_5_VLConfig(
        text_config=dict(
            hidden_size=HIDDEN, intermediate_size=16, num_hidden_layers=LAYERS,
            num_attention_heads=2, num_key_value_heads=2, vocab_size=len(tokenizer),
            rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            rope_theta=1000000.0, pad_token_id=0, bos_token_id=None, eos_token_id=1,
        ),
        vision_config=dict(
            depth=2, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=HIDDEN
        ),
    )  # fmt: skip
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    transformer = CosmosTransformer3DModel(
        in_channels=16 + 1, out_channels=16, num_attention_heads=2, attention_head_dim=16,
        num_layers=2, mlp_ratio=2, text_embed_dim=16, adaln_lora_dim=4,
        max_size=(128, 240, 240), patch_size=(1, 2, 2), rope_scale=(1.0, 3.0, 3.0),
        concat_padding_mask=False, extra_pos_embed_type=None,
        use_crossattn_projection=True, crossattn_proj_in_channels=HIDDEN * LAYERS,
        encoder_hidden_states_channels=16,
    )  # fmt: skip
    vae = tiny_wan_vae()
    scheduler = UniPCMultistepScheduler(
        use_karras_sigmas=True,
        use_flow_sigmas=True,
        prediction_type="flow_prediction",
        sigma_max=200.0,
        sigma_min=0.01,
    )
    pipe = Cosmos2_5_PredictBasePipeline(
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        safety_checker=PassThroughSafetyChecker(),
    )
    pipe.safety_checker = None  # saved as null: a checkpoint that names no guardrail
    return pipe


SHAPE = dict(height=32, width=48, num_frames=5)
CASES = (
    Case(
        name="cosmos2.5",
        family="cosmos2.5",
        build=build,
        shape=SHAPE,
        with_negative=dict(guidance_scale=3.0, negative_prompt="blurry, static"),
        without_negative=dict(guidance_scale=1.0),
    ),
)
