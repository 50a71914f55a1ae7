"""Which model a spec names, its family rules, and a content fingerprint for keys."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.models.families import (
    BUILTIN,
    FAMILIES,
    Family,
    family_for_checkpoint,
    family_for_hub_id,
    supported_classes,
)
from pipeline.models.families.base import Checkpoint
from pipeline.models.hub import family_from_model_index, pin_hub_model, pinned_spec, split_hub_spec

# A checkpoint may carry its own family and defaults (the embedded tiny model does).
PROMPTREEL_META = "promptreel.json"
# A text-to-video checkpoint loaded as another pipeline of its family, on the same weights,
# as diffusers documents it (`WanVideoToVideoPipeline.from_pretrained(<a T2V repo>)`, Wan 2.2
# TI2V-5B through `WanImageToVideoPipeline`): rows giving that media cell get the task's
# suffix appended to their model spec at validate (Family.media_tasks).
VIDEO_TASK, IMAGE_TASK = "#v2v", "#i2v"
TASKS = {VIDEO_TASK: "video", IMAGE_TASK: "image"}  # suffix -> the media column it serves
TASK_OF_COLUMN = {column: suffix for suffix, column in TASKS.items()}
_FULL_HASH_LIMIT = 64 * 2**20  # hash small checkpoints whole, big ones by structure


@dataclass(frozen=True)
class ModelRef:
    spec: str  # as the user wrote it
    kind: str  # "tiny" | "null" | "local" | "hub"
    family: Family
    location: str = ""  # directory or hub id; for "tiny" resolved when first loaded
    revision: str | None = None  # hub: the full commit sha the spec resolved to
    task: str = ""  # a TASKS suffix: loaded as family.pipeline_classes[0], not its own class

    @property
    def pinned_spec(self) -> str:
        """A spec naming exactly these weights: what actors on other nodes resolve."""
        if self.kind != "hub":
            return self.spec
        return pinned_spec(self.location, self.revision) + self.task


@lru_cache(maxsize=64)
def resolve_model(spec: str) -> ModelRef:
    """Map a --model value or a manifest `model` cell to a ModelRef, or raise ConfigError."""
    spec = spec.strip()
    for task in TASKS:
        if spec.endswith(task):
            return _as_task(spec, task, resolve_model(spec.removesuffix(task)))
    if spec in ("tiny", "null"):
        return ModelRef(spec, spec, FAMILIES[spec])
    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelRef(spec, "local", _local_family(path), str(path.resolve()))
    if spec.startswith((".", "/", "~")) or os.sep in spec.rstrip("/").split("/", 1)[-1]:
        raise ConfigError(f"model {spec!r}: no such local directory")
    return _resolve_hub_model(spec)


def _as_task(spec: str, task: str, ref: ModelRef) -> ModelRef:
    target = ref.family.task_family(TASKS[task])
    if target is None:
        raise ConfigError(
            f"model {ref.spec!r} ({ref.family.name} family) has no pipeline taking "
            f"`{TASKS[task]}` on its weights (see `promptreel models`)"
        )
    return ModelRef(spec, ref.kind, FAMILIES[target], ref.location, ref.revision, task)


def _resolve_hub_model(spec: str) -> ModelRef:
    """Pin a hub id to its commit sha now; its family from the snapshot's model_index.json
    (the name is only a fallback, for a cached snapshot without one)."""
    pin = pin_hub_model(*split_hub_spec(spec))
    family = None
    if pin.model_index is not None:
        class_name, family = family_from_model_index(pin.model_index)
        if family is None:
            raise ConfigError(
                f"model {spec!r}: unsupported pipeline class {class_name!r}; "
                f"supported: {', '.join(supported_classes())}"
            )
    family = family or family_for_hub_id(pin.repo_id)
    if family is None:
        raise ConfigError(
            f"unknown model {spec!r}: cannot tell its family from the name; supported families: "
            + ", ".join(name for name in FAMILIES if name not in BUILTIN)
        )
    return ModelRef(spec, "hub", family, pin.repo_id, pin.sha)


def _local_family(path: Path) -> Family:
    meta = path / PROMPTREEL_META
    if meta.is_file():
        name = json.loads(meta.read_text()).get("family")
        if name in FAMILIES:
            return FAMILIES[name]
    index = path / "model_index.json"
    if not index.is_file():
        raise ConfigError(f"model {str(path)!r}: not a diffusers directory (no model_index.json)")
    checkpoint = Checkpoint(json.loads(index.read_text()), path)
    family = family_for_checkpoint(checkpoint)
    if family is None:
        raise ConfigError(
            f"model {str(path)!r}: unsupported pipeline class {checkpoint.pipeline_class!r}; "
            f"supported: {', '.join(supported_classes())}"
        )
    return family


def model_location(ref: ModelRef) -> str:
    """Directory or hub id to load from; builds the tiny model on first use."""
    if ref.kind == "tiny":
        from pipeline.models.tiny import ensure_tiny_model

        return str(ensure_tiny_model())
    return ref.location


@lru_cache(maxsize=64)
def model_fingerprint(ref: ModelRef) -> str:
    """Content hash naming exactly which weights render; part of every item key."""
    if ref.kind == "null":
        return "null-v1"
    if ref.kind == "hub":  # a full commit sha, never a branch
        return f"hub:{ref.location}@{ref.revision}{ref.task}"
    return "dir:" + directory_digest(Path(model_location(ref))) + ref.task


def directory_digest(root: Path, only: str | None = None) -> str:
    """A content hash of a checkpoint directory (or of its one file named `only`)."""
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.name != PROMPTREEL_META and only in (None, p.name)
    )
    whole = sum(p.stat().st_size for p in files) <= _FULL_HASH_LIMIT
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(str(path.stat().st_size).encode() + b"\0")
        with open(path, "rb") as handle:
            if whole or path.suffix == ".json":
                for chunk in iter(lambda: handle.read(2**20), b""):
                    digest.update(chunk)
            else:  # big weights: the safetensors header names every tensor, shape and offset
                digest.update(handle.read(2**20))
    return digest.hexdigest()[:32]
