"""Hub ids pinned to a commit: `org/name[@revision]` -> the full commit sha, before planning.

A branch or tag moves; a commit does not. The driver resolves each hub id once (the
hub when it is allowed and reachable, else the local Hugging Face cache), and every key,
`job.json` and every actor on every node then use that sha. All cache and network rules
are huggingface_hub's own: HF_HOME / HF_HUB_CACHE say where the cache is, HF_HUB_OFFLINE
(or TRANSFORMERS_OFFLINE) forbids asking the hub.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.models.families import Family, family_for_checkpoint
from pipeline.models.families.base import Checkpoint

MODEL_INDEX = "model_index.json"
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HubPin:
    repo_id: str
    requested: str | None  # branch, tag or sha as written; None: the default branch
    sha: str  # the full commit every actor loads
    model_index: Path | None  # the snapshot's model_index.json, when we have it


def pinned_spec(repo_id: str, sha: str) -> str:
    """The spec naming exactly one commit: what actors resolve, what `ID@sha` advice shows."""
    return f"{repo_id}@{sha}"


def split_hub_spec(spec: str) -> tuple[str, str | None]:
    """'org/name' or 'org/name@revision' -> (repo id, revision or None)."""
    repo_id, _, revision = spec.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ConfigError(
            f"unknown model {spec!r}: expected 'tiny', 'null', a local diffusers directory "
            "or a hub id like 'Wan-AI/Wan2.1-T2V-1.3B-Diffusers' (optionally '@revision')"
        )
    return repo_id, revision or None


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def hub_offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def hub_name(repo_id: str, revision: str | None) -> str:
    """How errors name a repo at a revision: `org/name` or `org/name@rev`."""
    return repo_id + (f"@{revision}" if revision else "")


def pin_hub_model(
    repo_id: str, revision: str | None, cache_dir: str | None = None, offline: bool | None = None
) -> HubPin:
    """Resolve to a full commit sha and find the snapshot's model_index.json, or raise
    ConfigError saying what to do. `cache_dir`/`offline` default to huggingface_hub's."""
    cache_dir = cache_dir or hub_cache_dir()
    offline = hub_offline() if offline is None else offline
    name = hub_name(repo_id, revision)
    sha, _ = pin_revision(repo_id, revision, "model", cache_dir, offline)
    return HubPin(repo_id, revision, sha, _model_index(name, repo_id, sha, cache_dir, offline))


def pin_revision(
    repo_id: str,
    revision: str | None,
    what: str,
    cache_dir: str | None = None,
    offline: bool | None = None,
) -> tuple[str, Path | None]:
    """(full commit sha, its cached snapshot folder or None) of a repo's revision (refs/main
    without one); ConfigError naming `what` ("model", "LoRA") and what to do."""
    from huggingface_hub import errors, resolve_revision

    cache_dir = cache_dir or hub_cache_dir()
    offline = hub_offline() if offline is None else offline
    name = hub_name(repo_id, revision)
    try:
        sha = resolve_revision(
            repo_id, revision=revision, cache_dir=cache_dir, local_files_only=offline
        ).resolved
    except errors.RevisionResolutionError as exc:
        raise _not_available(name, repo_id, cache_dir, offline, exc, what=what) from exc
    except errors.HFValidationError as exc:
        raise ConfigError(f"{what} {name!r}: not a valid hub id ({exc})") from exc
    except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError) as exc:
        raise ConfigError(f"{what} {name!r}: the hub has no such repo or revision ({exc})") from exc
    except errors.HfHubHTTPError as exc:
        raise ConfigError(f"{what} {name!r}: the hub refused to resolve it ({exc})") from exc
    if not _COMMIT.fullmatch(sha):
        raise ConfigError(f"{what} {name!r}: resolved to {sha!r}, which is not a full commit sha")
    snapshot = _snapshot_dir(cache_dir, repo_id, sha)
    return sha, snapshot if snapshot.is_dir() else None


def _model_index(name, repo_id, sha, cache_dir, offline) -> Path | None:
    """The cached snapshot's model_index.json, fetched alone (a few bytes) when online."""
    from huggingface_hub import errors, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, MODEL_INDEX, cache_dir=cache_dir, revision=sha)
    if isinstance(cached, str):
        return Path(cached)
    snapshot = _snapshot_dir(cache_dir, repo_id, sha)
    if snapshot.is_dir():  # cached, but without a model_index.json: the name must tell
        return None
    if offline:
        raise _not_available(name, repo_id, cache_dir, offline, None, sha)
    try:
        return Path(hf_hub_download(repo_id, MODEL_INDEX, revision=sha, cache_dir=cache_dir))
    except errors.RemoteEntryNotFoundError as exc:
        raise ConfigError(
            f"model {name!r}: commit {sha} has no {MODEL_INDEX}; not a diffusers pipeline"
        ) from exc
    except (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, OSError) as exc:
        raise _not_available(name, repo_id, cache_dir, offline, exc, sha) from exc


def _snapshot_dir(cache_dir: str, repo_id: str, sha: str) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return (
        Path(cache_dir) / repo_folder_name(repo_id=repo_id, repo_type="model") / "snapshots" / sha
    )


def _not_available(name, repo_id, cache_dir, offline, cause, sha=None, what="model"):
    it = f"commit {sha}" if sha else "it"
    revision = sha or name.partition("@")[2]
    download = f"hf download {repo_id}" + (f" --revision {revision}" if revision else "")
    if offline:
        why = "HF_HUB_OFFLINE is set, so the hub is not asked"
    else:
        cause = getattr(cause, "__cause__", None) or cause  # the network error underneath
        why = f"the hub could not be reached ({type(cause).__name__}: {cause})"
    instead = "a local diffusers directory as --model" if what == "model" else "a local path"
    return ConfigError(
        f"{what} {name!r}: {it} is not in the local Hugging Face cache ({cache_dir}) and {why}. "
        f"Download it where the hub is reachable (`{download}` with the same "
        "HF_HOME or HF_HUB_CACHE) and bring that cache here, "
        + ("unset HF_HUB_OFFLINE, " if offline else "")
        + f"or pass {instead}."
    )


def family_from_model_index(index: Path) -> tuple[str, Family | None]:
    """(pipeline class name, its family or None) from a snapshot's model_index.json (and
    its component configs, which tell variants apart: Wan 2.2 TI2V's VAE, ...)."""
    checkpoint = Checkpoint(json.loads(index.read_text()), index.parent)
    return checkpoint.pipeline_class, family_for_checkpoint(checkpoint)
