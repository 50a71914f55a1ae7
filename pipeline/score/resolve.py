"""A `--score` flag to what the scoring actors load: local paths and an id naming exactly
those weights, checked before any render starts (a wrong checkpoint is exit 2 at once).

A hub id is pinned like a render model: resolved to a commit sha in the local Hugging Face
cache (`HF_HUB_OFFLINE=1`: the cache only) and loaded from that snapshot; a local
directory is named by a digest of its files. The id goes to job.json and each score row,
so a score computed by other weights is never mistaken for the run's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.models import directory_digest
from pipeline.models.hub import hub_cache_dir, hub_offline, split_hub_spec
from pipeline.score import SCORERS
from pipeline.score.base import ScoreError


@dataclass(frozen=True)
class ResolvedScorer:
    name: str  # registry name: the catalog column is score_<name>
    flag: str  # as the user wrote it (`clip=openai/clip-vit-base-patch32`)
    location: str | None  # local path(s) the scorer loads, in its own form
    scorer_id: str  # names the weights and the scorer's definition version

    def describe(self) -> dict:
        return {"flag": self.flag, "scorer_id": self.scorer_id}


def resolve_scorer(name: str, location: str | None) -> ResolvedScorer:
    scorer = SCORERS[name]
    flag = name if location is None and not scorer.needs_checkpoint else f"{name}={location}"
    if not scorer.needs_checkpoint:
        return ResolvedScorer(name, name, None, f"{name}-v1")
    location = location or scorer.default_location
    flag = f"{name}={location}"
    if name == "aesthetic":
        from pipeline.score.aesthetic import SEPARATOR, split_location

        parts = split_location(location)
        clip_dir, clip_id = _checkpoint(parts.clip, flag)
        head = _local_file(parts.head, flag)
        _check_head(clip_dir, head, flag)
        head_id = directory_digest(head.parent, only=head.name)
        return ResolvedScorer(
            name, flag, f"{clip_dir}{SEPARATOR}{head}", f"{name}-v1:{clip_id}:{head_id}"
        )
    clip_dir, clip_id = _checkpoint(location, flag)
    return ResolvedScorer(name, flag, str(clip_dir), f"{name}-v1:{clip_id}")


def _checkpoint(location: str, flag: str) -> tuple[Path, str]:
    """A CLIP directory (local, or a hub id's cached snapshot) and the id of its weights."""
    path = Path(location).expanduser()
    if path.is_dir():
        _check_clip(path, flag)
        return path.resolve(), "dir:" + directory_digest(path)
    if location.startswith((".", "/", "~")):
        raise ScoreError(f"--score {flag}: {location} is not a directory")
    repo_id, revision = split_hub_spec(location)
    snapshot, sha = _pinned_snapshot(repo_id, revision, flag)
    _check_clip(snapshot, flag)
    return snapshot, f"hub:{repo_id}@{sha}"


def _pinned_snapshot(repo_id: str, revision: str | None, flag: str) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download

    offline = hub_offline()
    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=hub_cache_dir(), local_files_only=offline
        )
    except Exception as exc:  # noqa: BLE001 - any hub failure: the same advice
        where = "the local Hugging Face cache" if offline else "the hub or the local cache"
        raise ScoreError(
            f"--score {flag}: {repo_id} is not in {where} ({type(exc).__name__}); "
            f"download it first (hf download {repo_id}) or give a local directory"
        ) from exc
    return Path(folder), Path(folder).name  # snapshots/<sha>


def _local_file(location: str, flag: str) -> Path:
    path = Path(location).expanduser()
    if not path.is_file():
        raise ScoreError(f"--score {flag}: {location} is not a file")
    return path.resolve()


def _check_clip(path: Path, flag: str) -> None:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ScoreError(f"--score {flag}: {path} has no readable config.json ({exc})") from exc
    if config.get("model_type") != "clip":
        raise ScoreError(
            f"--score {flag}: {path} holds a {config.get('model_type')!r} model; "
            "expected a CLIP checkpoint (model_type 'clip', e.g. openai/clip-vit-base-patch32)"
        )


def _check_head(clip_dir: Path, head: Path, flag: str) -> None:
    from safetensors import safe_open

    from pipeline.score.aesthetic import check_head

    dim = json.loads((clip_dir / "config.json").read_text()).get("projection_dim", 512)
    try:
        with safe_open(str(head), framework="numpy") as handle:
            shapes = {k: _Shape(handle.get_slice(k).get_shape()) for k in handle.keys()}
    except Exception as exc:  # noqa: BLE001 - not safetensors, truncated, ...
        raise ScoreError(f"--score {flag}: {head} is not a safetensors file ({exc})") from exc
    check_head(shapes, dim, str(head))


class _Shape:
    """Just the `.shape` check_head reads, without loading the tensor."""

    def __init__(self, shape):
        self.shape = tuple(shape)
