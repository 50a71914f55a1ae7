"""A tiny random-weight CLIP and aesthetic heads, built locally for the scorer tests.

The CLIP (hidden 32, 2 layers, 32x32 images in 8x8 patches, 16-dim projections) has a
byte-level CLIPTokenizer written here (every byte, alone and with CLIP's end-of-word
"</w>", no merges: any unicode tokenizes, one token per byte, so a long prompt passes the
77-token limit) and a CLIPImageProcessor at 32 px. Saved once with save_pretrained
(safetensors) under the same cache as the tiny diffusers checkpoints and loaded through
CLIPModel.from_pretrained like a real checkpoint.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pipeline.models.tiny import ensure_built
from pipeline.score.aesthetic import expected_head_shapes

NAME = "test-clip-v2"  # bump when the builder changes, so caches rebuild
MAX_TOKENS = 77  # the real CLIP text length
_SEED = 20261210


def tiny_clip_dir() -> Path:
    """The tiny CLIP's directory, built and cached on first use (its config.json marks a
    finished build: a transformers checkpoint has no model_index.json)."""
    return ensure_built(NAME, _build, marker="config.json")


class _ClipCheckpoint:
    """A CLIPModel and its processor, saved together like a hub CLIP repo."""

    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    def save_pretrained(self, path, safe_serialization: bool = True) -> None:
        self.model.save_pretrained(path, safe_serialization=safe_serialization)
        self.processor.save_pretrained(path)


def _build() -> _ClipCheckpoint:
    import torch
    from tokenizers import pre_tokenizers
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    with tempfile.TemporaryDirectory() as files:
        (Path(files) / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        (Path(files) / "merges.txt").write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer.from_pretrained(files, model_max_length=MAX_TOKENS)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
    )
    ids = dict(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,  # not 2: pooling at the first eos token
        pad_token_id=tokenizer.pad_token_id,
    )
    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer), max_position_embeddings=MAX_TOKENS, **small, **ids
        ),
        vision_config=dict(image_size=32, patch_size=8, **small),
        projection_dim=16,
    )
    torch.manual_seed(_SEED)
    return _ClipCheckpoint(CLIPModel(config).eval(), processor)


def tiny_aesthetic_head(path: Path, dim: int, seed: int = 0) -> Path:
    """A random aesthetic head for `dim`-dim CLIP embeddings, with the expected keys."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {
        key: torch.randn(shape, generator=generator) / shape[-1] ** 0.5
        for key, shape in expected_head_shapes(dim).items()
    }
    save_file(tensors, str(path))
    return path


def reference_cosines(clip_dir: Path):
    """cos(frame, prompt) of each frame with one prompt, through CLIPModel.forward (its
    own normalised image_embeds / text_embeds): one prompt per forward, no padding. The
    tests' independent computation of CLIPScore, written without pipeline/score."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(clip_dir).eval()
    processor = CLIPProcessor.from_pretrained(clip_dir)

    def cosines(frames, prompt: str) -> np.ndarray:
        text = processor.tokenizer([prompt], truncation=True, return_tensors="pt")
        images = [Image.fromarray(frame) for frame in frames]
        pixels = processor.image_processor(images=images, return_tensors="pt")
        with torch.no_grad():
            out = model(**text, pixel_values=pixels["pixel_values"])
        return (out.image_embeds.double() @ out.text_embeds.double()[0]).numpy()

    return cosines
