"""Per-clip scorers for "best of N": the registry and the `--score` flag.

    --score clip                       CLIPScore with the default CLIP
    --score clip=DIR_OR_HUB_ID         CLIPScore with that CLIP
    --score aesthetic=[CLIP::]HEAD.safetensors
    --score motion                     takes no checkpoint

Adding a scorer: one module defining a `Scorer`, one entry in SCORERS.
"""

from __future__ import annotations

from pipeline.score.aesthetic import AESTHETIC
from pipeline.score.base import Clip, LoadedScorer, ScoreError, Scorer
from pipeline.score.clip import CLIP
from pipeline.score.motion import MOTION

SCORERS: dict[str, Scorer] = {s.name: s for s in (CLIP, AESTHETIC, MOTION)}

__all__ = ["SCORERS", "Clip", "LoadedScorer", "ScoreError", "Scorer", "parse_score_flag"]


def parse_score_flag(text: str) -> tuple[str, str | None]:
    """'NAME' or 'NAME=LOCATION' -> (name, location or None), or ScoreError.

    None means the scorer's default location (resolved at load time); the location's
    form is checked here, its files when the scorer loads."""
    name, has_location, location = (part.strip() for part in text.strip().partition("="))
    scorer = SCORERS.get(name)
    if scorer is None:
        raise ScoreError(f"--score {text!r}: unknown scorer {name!r}; known: {', '.join(SCORERS)}")
    if not scorer.needs_checkpoint:
        if has_location:
            raise ScoreError(f"--score {text!r}: {name} takes no checkpoint; write --score {name}")
        return name, None
    if has_location and not location:
        default = (
            f" (or --score {name}: {scorer.default_location})" if scorer.default_location else ""
        )
        raise ScoreError(
            f"--score {text!r}: nothing after '='; write --score {name}={scorer.location_help}"
            + default
        )
    if not location and scorer.default_location is None:
        raise ScoreError(f"--score {text!r}: {name} needs --score {name}={scorer.location_help}")
    if location and scorer.check_location is not None:
        scorer.check_location(location)
    return name, location or None
