"""LoRA adapters inside a render actor: loaded into its one pipeline and switched per batch
with `set_adapters`; the base model is never reloaded. At most `capacity` adapters stay
loaded (least recently used first out, never one the current batch needs).

Adapters are **not fused**: PEFT adds each adapter's low-rank branch, weighted by its
scale, at run time, so switching never rounds the base weights and a batch without
adapters runs the base model exactly (`disable_lora`). The pixels are those of plain
diffusers' `load_lora_weights` + `set_adapters(names, adapter_weights=scales)` + call
(tests/unit/test_lora.py). Each actor fetches its own files (never through Ray's object
store) and checks the bytes are the ones validation hashed.
"""

from __future__ import annotations

from collections import OrderedDict

from pipeline.errors import ConfigError, RenderError
from pipeline.media.source import MediaError, MediaLimits, read_verified
from pipeline.models.hub_files import readable_location
from pipeline.models.lora_fit import adapter_tensors
from pipeline.plan.batches import Adapter
from pipeline.plan.lora_rows import lora_limits

CAPACITY = 8  # adapters kept loaded per actor (a Wan 14B rank-32 LoRA is ~300 MB)


def adapter_name(adapter: Adapter) -> str:
    """By content (and expert: the same file may load into both of Wan 2.2 A14B's)."""
    return (
        "lora-"
        + adapter.sha256[:16]
        + ("-" + adapter.expert if adapter.expert != "transformer" else "")
    )


class Adapters:
    def __init__(self, pipe, limits: MediaLimits, storage_options=None, capacity=CAPACITY):
        self.pipe = pipe
        self.limits = lora_limits(limits)
        self.storage_options = storage_options
        self.capacity = max(1, capacity)
        self.loaded: OrderedDict[str, None] = OrderedDict()
        self.active: tuple = ()  # (name, scale) pairs last applied; () = base model
        self.loads = 0

    def apply(self, lora: tuple[Adapter, ...]) -> None:
        """Make the pipeline render with exactly these adapters (none: the base model)."""
        wanted = tuple((adapter_name(a), a.scale) for a in lora)
        if wanted == self.active:
            return
        if not lora:
            self.pipe.disable_lora()
            self.active = ()
            return
        for adapter in lora:
            self._load(adapter)
        names = [name for name, _ in wanted]
        self.pipe.enable_lora()  # after a batch that ran the base model
        self.pipe.set_adapters(names, adapter_weights=[scale for _, scale in wanted])
        for name in names:
            self.loaded.move_to_end(name)
        self._evict(keep=set(names))
        self.active = wanted

    def _load(self, adapter: Adapter) -> None:
        name = adapter_name(adapter)
        if name in self.loaded:
            return
        try:
            location = readable_location(adapter.uri)  # a pinned hub file: its cached copy
            data = read_verified(location, adapter.sha256, self.limits, self.storage_options)
        except MediaError as exc:
            raise RenderError(f"lora: {exc}", exc.retriable) from exc
        except ConfigError as exc:  # a pinned hub file neither cached nor fetchable here
            raise RenderError(f"lora: {exc}", False) from exc
        tensors = adapter_tensors(data)
        del data
        second = {"load_into_transformer_2": True} if adapter.expert == "transformer_2" else {}
        self.pipe.load_lora_weights(tensors, adapter_name=name, **second)
        self.loaded[name] = None
        self.loads += 1

    def _evict(self, keep: set[str]) -> None:
        for name in list(self.loaded):
            if len(self.loaded) <= self.capacity:
                return
            if name not in keep:
                self.pipe.delete_adapters(name)
                del self.loaded[name]
