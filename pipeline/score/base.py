"""The one interface every per-clip scorer fills in: data plus one loader function.

A scorer ranks the N candidates of one item for "best of N": higher is better. It is
plain Python (no Ray): the actor loads it once per process with `load(location,
device)` and calls `score_batch` on clips as (uint8 frames (F, H, W, 3), prompt) pairs.

Scorers never import torch or transformers at module level: parsing `--score` flags and
`--help` run without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipeline.errors import PromptreelError

Clip = tuple[np.ndarray, str]  # (uint8 frames (F, H, W, 3), the prompt that made them)


class ScoreError(PromptreelError):
    """A scorer flag, checkpoint or clip that cannot be scored."""

    exit_code = 2  # like ConfigError: refused before (or instead of) scoring anything


class LoadedScorer(Protocol):
    def score_batch(self, clips: Sequence[Clip]) -> list[float]:
        """One score per clip, in order; higher is better."""
        ...


@dataclass(frozen=True)
class Scorer:
    name: str  # registry name, as in `--score NAME[=LOCATION]`
    needs_checkpoint: bool  # False: takes no location at all
    description: str  # one line, shown in --help and the docs
    # (location or None, torch device) -> a loaded scorer. A location is a LOCAL path
    # here: hub ids are resolved and pinned to a snapshot directory before loading.
    load: Callable[[str | None, str], LoadedScorer]
    default_location: str | None = None  # used when the flag names none (None: required)
    location_help: str = ""  # the location's form, for error messages: "[CLIP::]HEAD.safetensors"
    # Validates a location's form (not its files) when the flag is parsed: raises ScoreError.
    check_location: Callable[[str], object] | None = None
