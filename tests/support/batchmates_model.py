"""A test-only tiny Wan whose pixels DO move with batch-mates and position on CPU.

torch's CPU kernels run the tail of an elementwise op that does not fill a whole vector
step (`numel % 32` elements with AVX-512, `numel % 16` with AVX2) through a scalar loop,
whose SiLU/GELU differ by an ulp from the vector path: two identical samples of a batch
then differ in a few elements of the time embedding. The embedded tiny Wan's is 24 wide
(2 heads x 12): at batch 2, 48 elements, a tail on AVX-512 but none on AVX2 (measured on
an AMD EPYC without AVX-512: no value moved). Here the transformer is 20 wide (2 heads x
10: a tail on both), and the VAE decoder's weights are doubled, which amplifies the ulps:
tens of uint8 values per clip move by 1 (28 on that EPYC; tests/e2e/test_pixel_contract.py
prints it). Built once, cached next to the tiny model, loaded through `--model DIR` like
any checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.models.tiny import build_tiny_pipeline, ensure_built

NAME = "test-wan-batchmates-v2"
DECODER_GAIN = 2.0
HEAD_DIM = 10  # 2 heads x 10: a 20-wide time embedding, a scalar tail on AVX2 and AVX-512


def _build():
    import torch
    from diffusers import WanTransformer3DModel

    pipe = build_tiny_pipeline()
    config = {k: v for k, v in pipe.transformer.config.items() if not k.startswith("_")}
    torch.manual_seed(0)
    pipe.transformer = WanTransformer3DModel(**{**config, "attention_head_dim": HEAD_DIM})
    with torch.no_grad():
        for weight in pipe.vae.decoder.parameters():
            if weight.dim() >= 2:
                weight.mul_(DECODER_GAIN)
    return pipe


def ensure_batchmates_model() -> Path:
    return ensure_built(NAME, _build, {"family": "tiny"})
