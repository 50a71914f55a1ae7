"""Load a diffusers pipeline for a ModelRef: one code path for tiny, local and hub models."""

from __future__ import annotations

from pipeline.errors import ConfigError
from pipeline.models import ModelRef, model_location

DTYPES = ("float32", "bfloat16", "float16")


def load_pipeline(ref: ModelRef, dtype: str = "float32", device: str = "cpu"):
    if ref.kind == "null":
        from pipeline.models.null import NullPipeline

        return NullPipeline()
    import torch
    from diffusers import DiffusionPipeline

    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    try:
        pipe = DiffusionPipeline.from_pretrained(
            model_location(ref),
            revision=ref.revision,
            dtype=getattr(torch, dtype),
            use_safetensors=True,  # never unpickle weights
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load model {ref.spec!r}: {exc}") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
