"""Tiny random-weight checkpoints of the 2026 families (issue 19), one module per family.

Each module defines CASES: one `Case` per checkpoint it builds (a builder returning a
diffusers pipeline of random weights, configs shrunk from diffusers' own tests, tokenizers
built locally), and the rows its tests render. Built once, cached like the other tiny
checkpoints, loaded through DiffusionPipeline.from_pretrained.

    checkpoint_dir("sana-video") -> Path of a diffusers directory, built on first use
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.models.tiny import ensure_built

VERSION = "v1"  # bump when a builder changes, so caches rebuild
SEED = 20261207
MODULES = ("ltx2", "hunyuan15", "skyreels", "cosmos", "kandinsky5", "sana_video")


@dataclass(frozen=True)
class Case:
    """One tiny checkpoint and how its tests render it."""

    name: str  # checkpoint name: checkpoint_dir(name)
    family: str  # the family detection must find
    build: Callable[[], object]  # -> a diffusers pipeline of random weights
    shape: dict  # height, width, num_frames of its rows (small, valid for the family)
    # Row fields of a bucket whose call uses a negative prompt, and of one that uses none.
    with_negative: dict = field(default_factory=dict)
    without_negative: dict = field(default_factory=dict)
    steps: int = 2


def cases() -> dict[str, Case]:
    found: dict[str, Case] = {}
    for module in MODULES:
        for case in importlib.import_module(f"{__name__}.{module}").CASES:
            found[case.name] = case
    return found


def checkpoint_dir(name: str) -> Path:
    """The tiny checkpoint's directory, built and cached on first use."""
    return ensure_built(f"test-{name}-{VERSION}", cases()[name].build)
