"""The embedded default: a tiny random-weight WanPipeline, built once and loaded from disk.

It makes noise, not art, but runs every line a real Wan checkpoint runs, through the
same `DiffusionPipeline.from_pretrained` path.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

TINY_VERSION = "tiny-wan-v1"
_SEED = 20261125


def cache_dir() -> Path:
    root = os.environ.get("PROMPTREEL_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "promptreel"
    )
    return Path(root) / "models"


def ensure_tiny_model() -> Path:
    """Return the tiny model's directory, building it first if it is missing."""
    return ensure_built(TINY_VERSION, build_tiny_pipeline, {"family": "tiny"})


def ensure_built(
    name: str, build, meta: dict | None = None, marker: str = "model_index.json"
) -> Path:
    """cache_dir()/name, saved from build() (anything with save_pretrained: a pipeline, or
    a transformers model, whose finished build `marker` config.json marks) with
    safetensors on first use. `meta` goes to promptreel.json (e.g. the family, for
    checkpoints detection can't tell)."""
    target = cache_dir() / name
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        build().save_pretrained(staging, safe_serialization=True)
        if meta:
            (staging / "promptreel.json").write_text(json.dumps(meta))
        try:
            os.rename(staging, target)  # atomic: a concurrent builder loses harmlessly
        except OSError:
            if not (target / marker).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def byte_tokenizer():
    """A byte-level tokenizer: every prompt, any unicode, maps to distinct tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for char in sorted(byte_chars):
        vocab[char] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def build_tiny_pipeline():
    import torch
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = byte_tokenizer()
    torch.manual_seed(_SEED)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
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
    ).eval()
    vae = tiny_wan_vae()
    transformer = tiny_wan_transformer(in_channels=16, out_channels=16)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformer,
    )


def tiny_wan_transformer(**channels):
    """The tiny Wan transformer of diffusers' tests (random weights from the caller's
    seed); `channels`: in/out channels and the image-to-video extras. The embedded model
    and the test checkpoints (tests/support/checkpoints.py) share it."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        **channels,
    )


def tiny_wan_vae():
    """The tiny model's Wan VAE (16 latent channels), also the tiny VAE of other families'
    test checkpoints that decode with Wan's (Cosmos 2.5, Sana Video)."""
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
