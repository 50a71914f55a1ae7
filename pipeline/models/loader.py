"""Load a diffusers pipeline for a ModelRef: one code path for tiny, local and hub models."""

from __future__ import annotations

from pipeline.config import RenderSettings
from pipeline.errors import ConfigError
from pipeline.models import ModelRef, model_location
from pipeline.models.lanes import apply_lanes

DTYPES = ("float32", "bfloat16", "float16")


OFFLOAD_MODES = ("none", "model", "sequential")


def load_pipeline(ref: ModelRef, settings: RenderSettings):
    if ref.kind == "null":
        from pipeline.models.null import NullPipeline

        return NullPipeline()
    import diffusers
    import torch

    # Its own class from model_index.json, or the one its task names (models.TASKS).
    loader = getattr(diffusers, ref.family.pipeline_classes[0]) if ref.task else None
    if settings.dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {settings.dtype!r}")
    if settings.offload not in OFFLOAD_MODES:
        raise ConfigError(f"--offload must be one of {', '.join(OFFLOAD_MODES)}")
    try:
        pipe = (loader or diffusers.DiffusionPipeline).from_pretrained(
            model_location(ref),
            revision=ref.revision,
            dtype=getattr(torch, settings.dtype),
            use_safetensors=True,  # never unpickle weights
            **(ref.family.load_args() if ref.family.load_args else {}),
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load model {ref.spec!r}: {exc}") from exc
    pipe.set_progress_bar_config(disable=True)
    if ref.family.after_load:
        ref.family.after_load(pipe)
    return apply_gpu_options(pipe, settings)


def apply_gpu_options(pipe, settings: RenderSettings):
    """Offload moves weights, not math; tiling and compile change kernels and so pixels."""
    if settings.offload == "model":
        pipe.enable_model_cpu_offload(device=settings.device)
    elif settings.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=settings.device)
    else:
        pipe.to(settings.device)
    if settings.vae_tiling:
        pipe.vae.enable_tiling()
    apply_lanes(pipe, settings)  # before compile: it compiles blocks with their hooks
    if settings.compile:
        denoiser = getattr(pipe, "transformer", None)
        if denoiser is None or not hasattr(denoiser, "compile_repeated_blocks"):
            raise ConfigError(
                "--compile needs a pipeline whose transformer supports "
                "regional compilation (compile_repeated_blocks)"
            )
        denoiser.compile_repeated_blocks(fullgraph=True)
    return pipe
