"""The family registry. Adding a family: one module defining FAMILIES, one entry in MODULES."""

from __future__ import annotations

from pipeline.models.families import (
    animatediff,
    cogvideox,
    cosmos,
    hunyuan,
    hunyuan15,
    kandinsky5,
    ltx,
    ltx2,
    mochi,
    null,
    sana_video,
    skyreels,
    tiny,
    wan,
)
from pipeline.models.families.base import Checkpoint, Family, Param

MODULES = (
    skyreels,  # before wan: SkyReels-V2 ids ("...-t2v-14b-540p") may contain wan's hints
    wan,
    ltx2,  # before ltx: "ltx-2" hub ids contain ltx's hint "ltx"
    ltx,
    cogvideox,
    hunyuan15,  # before hunyuan: "hunyuanvideo-1.5" contains "hunyuanvideo"
    hunyuan,
    cosmos,
    kandinsky5,
    sana_video,
    animatediff,
    mochi,
    tiny,
    null,
)  # hub hints are tried in this order

FAMILIES: dict[str, Family] = {f.name: f for module in MODULES for f in module.FAMILIES}
BUILTIN = ("tiny", "null")  # not checkpoints a user brings


def _params() -> dict[str, Param]:
    """Every family parameter by name; one name means one kind of value everywhere."""
    found: dict[str, Param] = {}
    for family in FAMILIES.values():
        for param in family.params:
            known = found.setdefault(param.name, param)
            if known.kind != param.kind:
                raise ValueError(f"family parameter {param.name!r} has two kinds")
    return found


PARAMS: dict[str, Param] = _params()
PARAM_NAMES: tuple[str, ...] = tuple(sorted(PARAMS))  # manifest/catalog columns, key order


def supported_classes() -> tuple[str, ...]:
    names = (c for f in FAMILIES.values() if f.name not in BUILTIN for c in f.pipeline_classes)
    return tuple(dict.fromkeys(names))


def family_for_checkpoint(checkpoint: Checkpoint) -> Family | None:
    """The first family (registry order: variants first) taking this checkpoint."""
    for family in FAMILIES.values():
        if checkpoint.pipeline_class in family.pipeline_classes and family.matches(checkpoint):
            return family.for_checkpoint(checkpoint)
    return None


def family_for_class(pipeline_class: str) -> Family | None:
    return family_for_checkpoint(Checkpoint({"_class_name": pipeline_class}))


def family_for_hub_id(hub_id: str) -> Family | None:
    """Hub ids carry no model_index.json we can read offline: recognise them by name."""
    lowered = hub_id.lower()
    for family in FAMILIES.values():
        if any(hint in lowered for hint in family.hub_hints):
            return family
    return None
