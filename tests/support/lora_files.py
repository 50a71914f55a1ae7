"""Tiny LoRA adapters for the tiny Wan model, written as .safetensors files in a few lines:
random low-rank matrices over a few of its Linear layers, in diffusers' own key format
(what `save_lora_weights` writes) or in the original Wan format (`diffusion_model.*`,
lora_down/lora_up, which diffusers converts on load)."""

from __future__ import annotations

from pathlib import Path

# Module -> (in, out) of the tiny Wan transformer (pipeline/models/tiny.py: dim 24, ffn 32).
MODULES = {
    "blocks.0.attn1.to_q": (24, 24),
    "blocks.0.attn1.to_v": (24, 24),
    "blocks.1.attn2.to_k": (24, 24),
    "blocks.1.ffn.net.0.proj": (24, 32),
}
# The same modules as the original Wan checkpoints name them.
ORIGINAL = {
    "blocks.0.attn1.to_q": "blocks.0.self_attn.q",
    "blocks.0.attn1.to_v": "blocks.0.self_attn.v",
    "blocks.1.attn2.to_k": "blocks.1.cross_attn.k",
    "blocks.1.ffn.net.0.proj": "blocks.1.ffn.0",
}


def write_wan_lora(path: Path, seed: int, rank: int = 4, original: bool = False) -> Path:
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for module, (fan_in, fan_out) in MODULES.items():
        down = torch.randn(rank, fan_in, generator=generator) * 0.3
        up = torch.randn(fan_out, rank, generator=generator) * 0.3
        if original:
            name = f"diffusion_model.{ORIGINAL[module]}"
            tensors |= {f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up}
        else:
            name = f"transformer.{module}"
            tensors |= {f"{name}.lora_A.weight": down, f"{name}.lora_B.weight": up}
    save_file(tensors, str(path))
    return path


def write_text_encoder_lora(path: Path) -> Path:
    """An adapter for the text encoder only: promptreel caches embeddings, so refused."""
    import torch
    from safetensors.torch import save_file

    name = "text_encoder.encoder.block.0.layer.0.SelfAttention.q"
    tensors = {
        f"{name}.lora_A.weight": torch.ones(2, 32),
        f"{name}.lora_B.weight": torch.ones(32, 2),
    }
    save_file(tensors, str(path))
    return path
