"""One file of a hub repo, pinned to a commit like models: LoRA adapters given as hub ids.

A location `org/name`, `org/name@revision` or either with `:path/in/repo.safetensors` names a
hub repo (when no such local file exists). Validation pins it to the commit its revision
resolves to (refs/main without one) and writes the pinned form, `org/name@<sha>:<file>`,
into the row; actors read exactly that commit's file (from their Hugging Face cache, or
downloaded when the hub is reachable). Without `:<file>`, the repo's
`pytorch_lora_weights.safetensors` (diffusers' default name) or its only `.safetensors`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.models.hub import hub_cache_dir, hub_name, hub_offline, pin_revision

HUB_FILE = re.compile(
    r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w.-]+))?(?::(?P<file>[\w./ -]+))?$"
)
DEFAULT_LORA_FILE = "pytorch_lora_weights.safetensors"


@dataclass(frozen=True)
class HubFile:
    repo_id: str
    revision: str | None
    filename: str | None

    @property
    def pinned(self) -> str:
        return f"{self.repo_id}@{self.revision}:{self.filename}"


def parse_hub_file(location: str) -> HubFile | None:
    """The hub file a location names, or None when it is not of that form: a URL, an
    absolute or explicitly relative path, or `dir/file.safetensors` (a relative path: a
    hub repo's file is named after a colon). The caller checks no such local file exists."""
    if "://" in location or location.startswith(("/", "~", ".")):
        return None
    found = HUB_FILE.fullmatch(location)
    if found is None or (found["file"] is None and location.endswith(".safetensors")):
        return None
    return HubFile(found["repo"], found["rev"], found["file"])


def readable_location(uri: str) -> str:
    """Where to read a validated adapter location: a pinned hub file's cached copy (fetched
    when missing and allowed), anything else as it is."""
    hub = parse_hub_file(uri)
    if hub is None or hub.revision is None or hub.filename is None:
        return uri
    return local_path(hub)


def pin_hub_file(spec: HubFile) -> HubFile:
    """The same file at a full commit sha, with its file name settled; ConfigError naming
    the repo and what to do."""
    from huggingface_hub import errors, list_repo_files

    name = hub_name(spec.repo_id, spec.revision)
    sha, snapshot = pin_revision(spec.repo_id, spec.revision, "LoRA")
    filename = spec.filename
    if filename is None:
        if snapshot is not None and snapshot.is_dir():
            files = [str(p.relative_to(snapshot)) for p in snapshot.rglob("*.safetensors")]
        else:
            try:
                files = list_repo_files(spec.repo_id, revision=sha)
                files = [f for f in files if f.endswith(".safetensors")]
            except (errors.HfHubHTTPError, OSError) as exc:
                raise ConfigError(f"LoRA {name!r}: cannot list the repo's files ({exc})") from exc
        filename = _pick(name, sorted(files))
    return HubFile(spec.repo_id, sha, filename)


def _pick(name: str, files: list[str]) -> str:
    if DEFAULT_LORA_FILE in files:
        return DEFAULT_LORA_FILE
    if len(files) == 1:
        return files[0]
    shown = ", ".join(files) or "none"
    raise ConfigError(
        f"LoRA {name!r}: which .safetensors file? The repo holds {shown}; "
        f"name one as '{name}:<file>'"
    )


def local_path(pinned: HubFile) -> str:
    """The pinned file in the Hugging Face cache, downloaded first when it is missing and
    the hub may be asked; ConfigError otherwise."""
    from huggingface_hub import errors, hf_hub_download

    try:
        return hf_hub_download(
            pinned.repo_id,
            pinned.filename,
            revision=pinned.revision,
            cache_dir=hub_cache_dir(),
            local_files_only=hub_offline(),
        )
    except (errors.LocalEntryNotFoundError, errors.EntryNotFoundError) as exc:
        raise ConfigError(
            f"LoRA {pinned.pinned!r}: not in the local Hugging Face cache ({hub_cache_dir()})"
            f" and the hub cannot be asked ({type(exc).__name__}); download it with "
            f"`hf download {pinned.repo_id} {pinned.filename} --revision {pinned.revision}`"
        ) from exc
    except (errors.HfHubHTTPError, OSError) as exc:
        raise ConfigError(f"LoRA {pinned.pinned!r}: cannot fetch it ({exc})") from exc
