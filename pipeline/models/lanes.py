"""Speed lanes (issue 18): opt-in options that buy speed with kernels or with pixels.

- `--attention-backend NAME`: diffusers' attention dispatcher (`set_attention_backend`). The
  same math through another kernel: bits move only through the order of operations, like
  --dtype or --compile. In job.json's fingerprint, not in the key.
- `--cache KIND[:VALUE]`: a diffusers step cache (`enable_cache`) that skips or predicts
  transformer work on some steps. Approximate: other pixels, so the lane is part of every
  key (`key_text`) as well as the fingerprint; an exact and a cached clip of one request
  never share a key. A cache that decides per batch (first-block compares the whole batch's
  residual to a threshold) would make a clip depend on its batch-mates: it needs
  --batch-size 1, which keeps "same request, same pixels" true.
- `--quantize TYPE`: torchao quantization of the transformer(s) after loading (`quantize_`).
  Other weights, other pixels: keyed like a cache. Needs torchao (`promptreel[quantize]`).

Which lanes a family takes is its adapter's `lanes` (`promptreel models` prints them),
measured with bench/lanes.py on each family's tiny checkpoint; tests/unit/test_lanes.py
checks, per family, that "attention" is listed exactly where a processor takes a backend,
caches only where the denoiser has diffusers' cache hooks and "quantize" exactly where it is
a transformer. Validation runs before Ray
starts: a lane a row's family does not take is exit 2, naming both. No torch or diffusers at
import (validate and plan run without them); --attention-backend imports diffusers to check
the name against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.models.families.base import ATTENTION_LANE as ATTENTION

# Backends measured on CPU (bench/lanes.py); every other diffusers backend needs CUDA (or
# a CUDA-only package) and is refused with --device cpu.
CPU_ATTENTION_BACKENDS = ("native", "_native_math", "_native_flash")
# diffusers 0.42's backends that raise on an attention mask (tests/unit/test_lanes.py reads
# the installed diffusers to check this list): refused for families that pass one.
MASKLESS_BACKENDS = (
    *("flash", "flash_hub", "flash_4_hub", "_flash_3", "_flash_3_hub", "aiter_fa2_hub"),
    *("_native_flash", "_native_xla", "sage", "sage_hub", "sage_blackwell_hub"),
    *("_sage_qk_int8_pv_fp16_cuda", "_sage_qk_int8_pv_fp16_triton"),
    *("_sage_qk_int8_pv_fp8_cuda", "_sage_qk_int8_pv_fp8_cuda_sm90"),
)


# --quantize TYPE -> its torchao config class (torchao.quantization).
QUANT_TYPES = {
    "int8wo": "Int8WeightOnlyConfig",
    "int8dq": "Int8DynamicActivationInt8WeightConfig",
    "float8wo": "Float8WeightOnlyConfig",
}
QUANTIZE = "quantize"  # its name in a family's `lanes`


@dataclass(frozen=True)
class CacheKind:
    name: str  # what --cache takes
    config: str  # the diffusers.hooks config class
    value_name: str  # its one tunable, `KIND:VALUE` on the command line
    default: float
    integer: bool
    per_batch: bool  # decides from the whole batch: needs --batch-size 1
    help: str

    def parse_value(self, text: str) -> float:
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            kind = "a whole number" if self.integer else "a number"
            raise ConfigError(f"--cache {self.name}: {self.value_name} must be {kind}") from None
        if not value > 0 or value != value:
            raise ConfigError(f"--cache {self.name}: {self.value_name} must be above 0")
        return value

    def diffusers_config(self, value: float, current_timestep):
        import diffusers.hooks as hooks

        config = getattr(hooks, self.config)
        if self.name == "first-block":
            return config(threshold=float(value))
        if self.name == "taylorseer":
            return config(cache_interval=int(value))
        return config(  # pab: spatial attention reused for `value` steps, mid-schedule
            spatial_attention_block_skip_range=int(value),
            current_timestep_callback=current_timestep,
        )


CACHE_KINDS = {
    kind.name: kind
    for kind in (
        CacheKind(
            "first-block",
            "FirstBlockCacheConfig",
            "threshold",
            0.05,
            False,
            True,
            "skips the other blocks while the first block's output changes less than "
            "THRESHOLD (relative) step to step; decides per batch",
        ),
        CacheKind(
            "taylorseer",
            "TaylorSeerCacheConfig",
            "interval",
            5,
            True,
            False,
            "full transformer work every INTERVAL steps, Taylor-predicted in between",
        ),
        CacheKind(
            "pab",
            "PyramidAttentionBroadcastConfig",
            "skip",
            2,
            True,
            False,
            "Pyramid Attention Broadcast: spatial attention reused for SKIP steps between "
            "timesteps 100 and 800",
        ),
    )
}


@dataclass(frozen=True)
class CacheChoice:
    kind: CacheKind
    value: float

    @property
    def text(self) -> str:
        value = int(self.value) if self.kind.integer else self.value
        return f"{self.kind.name}:{value!r}"


def parse_cache(text: str) -> CacheChoice:
    """`KIND[:VALUE]` -> the step cache and its value (the kind's default when omitted)."""
    name, _, value = text.strip().partition(":")
    kind = CACHE_KINDS.get(name.strip().lower())
    if kind is None:
        known = ", ".join(f"{k.name}[:{k.value_name.upper()}]" for k in CACHE_KINDS.values())
        raise ConfigError(f"--cache {text!r}: unknown step cache; choose one of {known}")
    return CacheChoice(kind, kind.parse_value(value) if value.strip() else kind.default)


def canonical_cache(text: str | None) -> str | None:
    """The one spelling a cache is recorded and keyed by ("first-block:0.05")."""
    return None if text is None else parse_cache(text).text


def key_text(render) -> str | None:
    """What the lanes add to every key: only those that change pixels by design."""
    parts = []
    if render.cache is not None:
        parts.append(f"cache={canonical_cache(render.cache)}")
    if render.quantize is not None:
        parts.append(f"quantize={render.quantize}")
    return "\x1f".join(parts) or None


def check_quantize(name: str) -> None:
    import importlib.util

    if name not in QUANT_TYPES:
        raise ConfigError(f"--quantize {name!r}: choose one of {', '.join(QUANT_TYPES)}")
    if importlib.util.find_spec("torchao") is None:
        raise ConfigError(
            "--quantize needs torchao, not installed here: pip install 'promptreel[quantize]'"
        )


def attention_backends() -> tuple[str, ...]:
    from diffusers.models.attention_dispatch import AttentionBackendName

    return tuple(name.value for name in AttentionBackendName)


def check_attention_backend(name: str, device: str) -> None:
    """A backend this diffusers names, whose packages are here, that runs on `device`."""
    known = attention_backends()
    if name not in known:
        raise ConfigError(
            f"--attention-backend {name!r}: not a diffusers attention backend; "
            f"choose one of {', '.join(known)}"
        )
    if device == "cpu" and name not in CPU_ATTENTION_BACKENDS:
        raise ConfigError(
            f"--attention-backend {name!r} needs a CUDA device; on --device cpu use one of "
            f"{', '.join(CPU_ATTENTION_BACKENDS)}"
        )
    from diffusers.models import attention_dispatch

    check = getattr(attention_dispatch, "_check_attention_backend_requirements", None)
    if check is not None:
        try:
            check(attention_dispatch.AttentionBackendName(name))
        except (RuntimeError, ImportError) as exc:
            raise ConfigError(f"--attention-backend {name!r}: {exc}") from exc


def check_lanes(render, families: Iterable) -> None:
    """Every lane the run asks for, against the families its rows use (exit 2 on a miss)."""
    wanted = []
    if render.attention_backend is not None:
        check_attention_backend(render.attention_backend, render.device)
        wanted.append((ATTENTION, f"--attention-backend {render.attention_backend}"))
    if render.cache is not None:
        choice = parse_cache(render.cache)
        if choice.kind.per_batch and render.batch_size != 1:
            raise ConfigError(
                f"--cache {choice.text} decides per batch (a clip would depend on its "
                f"batch-mates): it needs --batch-size 1, got {render.batch_size}"
            )
        wanted.append((choice.kind.name, f"--cache {choice.text}"))
    if render.quantize is not None:
        check_quantize(render.quantize)
        wanted.append((QUANTIZE, f"--quantize {render.quantize}"))
    for family in families:
        for lane, flag in wanted:
            if lane not in family.lanes:
                takes = ", ".join(family.lanes) or "no speed lane"
                raise ConfigError(f"{flag}: family {family.name} takes {takes}")
        if family.attention_masks and render.attention_backend in MASKLESS_BACKENDS:
            raise ConfigError(
                f"--attention-backend {render.attention_backend}: family {family.name} "
                "passes an attention mask, which this backend refuses; use one that takes "
                "masks (native, _native_math, _native_cudnn, _native_efficient, flex, ...)"
            )


def apply_lanes(pipe, render) -> None:
    """In the actor, after the pipeline is on its device: the lanes on every denoiser."""
    denoisers = [getattr(pipe, name, None) for name in ("transformer", "transformer_2")]
    denoisers = [d for d in denoisers if d is not None]
    if not denoisers and (render.attention_backend or render.cache or render.quantize):
        raise ConfigError(f"speed lanes need a transformer; {type(pipe).__name__} has none")
    if render.quantize is not None:
        import torchao.quantization as quantization

        config = getattr(quantization, QUANT_TYPES[render.quantize])
        for denoiser in denoisers:
            quantization.quantize_(denoiser, config())
    if render.attention_backend is not None:
        for denoiser in denoisers:
            denoiser.set_attention_backend(render.attention_backend)
    if render.cache is not None:
        choice = parse_cache(render.cache)
        for denoiser in denoisers:
            denoiser.enable_cache(
                choice.kind.diffusers_config(choice.value, lambda: pipe.current_timestep)
            )
