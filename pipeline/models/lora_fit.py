"""Does a LoRA adapter fit a model? Answered in the driver before any GPU time.

The adapter's tensors go through the model's own pipeline class's `lora_state_dict` (so
every format diffusers reads for that family is converted as `load_lora_weights` would:
PEFT/diffusers keys, the original Wan `diffusion_model.*` keys, musubi, ...). Each
converted key must then name a module of the model's transformer, built from its config
on the meta device (no weights, no memory), and each LoRA matrix must fit that module's
Linear shape. A Wan LoRA on an LTX row fails here, naming the modules it lacks.

An adapter for Wan 2.2 A14B's second expert (`expert: transformer_2`) is checked against
that transformer, as `load_lora_weights(..., load_into_transformer_2=True)` loads it. Not
supported yet (refused with a clear error): adapters for the text encoder (promptreel caches
text embeddings per actor).
"""

from __future__ import annotations

from functools import lru_cache

from pipeline.models import model_location, resolve_model

# Pipeline components an adapter may target besides the transformer (refused, see above).
_OTHER_COMPONENTS = {"text_encoder", "text_encoder_2", "transformer_2", "unet", "image_encoder"}
# What a converted key may end with, after the module's name.
_SUFFIXES = (
    ".lora_A.weight",
    ".lora_B.weight",
    ".lora_B.bias",
    ".lora_magnitude_vector",
    ".alpha",
    ".diff_b",
    ".diff",
)


def adapter_tensors(data: bytes) -> dict:
    """safetensors bytes -> {name: tensor}; ValueError when they are not safetensors."""
    from safetensors.torch import load

    try:
        return load(data)
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise ValueError(f"not a safetensors file ({type(exc).__name__}: {exc})") from None


@lru_cache(maxsize=16)
def _model(spec: str, component: str = "transformer") -> tuple[type, str | None, dict]:
    """(pipeline class, transformer class name, module name -> (in, out) of each Linear,
    None for other modules) of a model's `component`, from its configs only; no such
    transformer (a UNet pipeline such as AnimateDiff): (pipeline class, None, {})."""
    import diffusers
    import torch
    from accelerate import init_empty_weights

    ref = resolve_model(spec)
    location = model_location(ref)
    index = diffusers.DiffusionPipeline.load_config(location, revision=ref.revision)
    pipeline_cls = getattr(diffusers, index["_class_name"])
    if not (index.get(component) or [None])[0]:
        return pipeline_cls, None, {}
    transformer_cls = getattr(diffusers, index[component][1])
    config = transformer_cls.load_config(location, subfolder=component, revision=ref.revision)
    with init_empty_weights():
        transformer = transformer_cls.from_config(config)
    shapes = {
        name: (module.in_features, module.out_features)
        if isinstance(module, torch.nn.Linear)
        else None
        for name, module in transformer.named_modules()
    }
    return pipeline_cls, transformer_cls.__name__, shapes


def fit_problem(spec: str, tensors: dict, expert: str = "transformer") -> str:
    """ "" when the adapter fits the model `spec` (its `expert` transformer), else why not
    (one sentence)."""
    pipeline_cls, transformer_name, shapes = _model(spec, expert)
    family = resolve_model(spec).family.name
    about = f"{family} ({pipeline_cls.__name__}, {transformer_name})"
    if transformer_name is None and expert != "transformer":
        return f"{family} models have no {expert} (only Wan 2.2 A14B's two experts do)"
    if transformer_name is None:
        unet = f"{family} ({pipeline_cls.__name__}) has no transformer"
        return f"{unet}: LoRA for UNet models is not supported yet"
    if not hasattr(pipeline_cls, "lora_state_dict"):
        return f"{about} takes no LoRA (its pipeline has no LoRA loader)"
    try:
        converted = pipeline_cls.lora_state_dict(dict(tensors))
    except Exception as exc:  # noqa: BLE001 - each converter raises its own
        return f"diffusers cannot read it as a LoRA for {about}: {type(exc).__name__}: {exc}"
    if isinstance(converted, tuple):
        converted = converted[0]
    if not converted:
        return f"it holds no LoRA weights {about} can load"
    keys = list(converted)
    components = {key.split(".", 1)[0] for key in keys} & _OTHER_COMPONENTS
    if components:
        return f"it adapts {', '.join(sorted(components))}: only the transformer is supported"
    keys = [key.removeprefix("transformer.") for key in keys]
    missing, misfit = [], []
    for key in keys:
        suffix = next((s for s in _SUFFIXES if key.endswith(s)), None)
        if suffix is None:
            return f"key {key!r} is not a LoRA weight diffusers loads"
        module = key[: -len(suffix)]
        if module not in shapes:
            missing.append(module)
            continue
        shape, linear = tuple(converted[_full(key, converted)].shape), shapes[module]
        if linear is None:  # a norm or embedding: only full diffs adapt those
            fits = suffix in (".diff", ".diff_b")
        else:
            fits = _fits(suffix, shape, linear)
        if not fits:
            target = f"Linear{linear}" if linear else "no Linear"
            misfit.append(f"{module} {shape} vs {target}")
    if missing:
        modules = sorted(set(missing))
        return (
            f"it adapts {len(modules)} module(s) the {about} transformer does not have, e.g. "
            f"{modules[0]!r}: a LoRA for another model family?"
        )
    if misfit:
        return f"its shapes do not fit {about}: {misfit[0]} (a LoRA for another model size?)"
    return ""


def _full(key: str, converted: dict) -> str:
    return "transformer." + key if "transformer." + key in converted else key


def _fits(suffix: str, shape: tuple, linear: tuple[int, int]) -> bool:
    in_features, out_features = linear
    if suffix == ".lora_A.weight":
        return len(shape) == 2 and shape[1] == in_features
    if suffix == ".lora_B.weight":
        return len(shape) == 2 and shape[0] == out_features
    if suffix in (".lora_B.bias", ".diff_b"):
        return shape == (out_features,)
    if suffix == ".diff":
        return shape == (out_features, in_features)
    return True  # alpha, magnitude vector: scalars or per-output, checked by PEFT
