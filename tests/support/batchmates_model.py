"""A test-only tiny Wan whose pixels DO move with batch-mates and position on CPU.

The embedded tiny Wan's time embedding is 24 wide (2 heads x 12): at batch 2 that is a
(2, 24) tensor, and torch's CPU kernels run the last `numel % 32` elements of SiLU/GELU
through a scalar loop, so two identical samples differ by an ulp in a few elements. In
the embedded model those ulps rarely reach a uint8 value. Here the VAE decoder's weights
are doubled, which amplifies them: tens of uint8 values per clip move by 1 (measured in
tests/e2e/test_pixel_contract.py). Built once, cached next to the tiny model, loaded through
`--model DIR` like any checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.models.tiny import build_tiny_pipeline, ensure_built

NAME = "test-wan-batchmates-v1"
DECODER_GAIN = 2.0


def _build():
    import torch

    pipe = build_tiny_pipeline()
    with torch.no_grad():
        for weight in pipe.vae.decoder.parameters():
            if weight.dim() >= 2:
                weight.mul_(DECODER_GAIN)
    return pipe


def ensure_batchmates_model() -> Path:
    return ensure_built(NAME, _build, {"family": "tiny"})
