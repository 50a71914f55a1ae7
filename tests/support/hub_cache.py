"""A Hugging Face hub cache built locally, in the hub's own layout, for tests (no network).

`models--org--name/blobs/<sha256>` holds the content, `snapshots/<commit>/<path>` links to
it, `refs/<branch>` names a commit: what `hf download` leaves behind. conftest.py points
HF_HOME at a session temp dir and sets HF_HUB_OFFLINE=1, so no test reads a real cache or
the network; `session_hub()` is that temp cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def session_hub() -> Path:
    from huggingface_hub import constants

    hub = Path(constants.HF_HUB_CACHE)
    assert "promptreel-test-hf" in str(hub), f"refusing to write into a real HF cache: {hub}"
    return hub


def repo_dir(hub: Path, repo_id: str) -> Path:
    return hub / ("models--" + repo_id.replace("/", "--"))


def add_snapshot(hub: Path, repo_id: str, sha: str, source: Path) -> Path:
    """Store `source`'s files as a snapshot: content in blobs/, links in snapshots/."""
    repo = repo_dir(hub, repo_id)
    snapshot = repo / "snapshots" / sha
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        if path.name == "promptreel.json":  # a hub checkpoint carries no promptreel hints
            continue
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def point_ref(hub: Path, repo_id: str, sha: str, ref: str = "main") -> None:
    refs = repo_dir(hub, repo_id) / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / ref).write_text(sha)


def cache_model_index(tmp: Path, repo_id: str, class_name: str) -> str:
    """A snapshot holding only model_index.json in the session cache, refs/main -> it:
    enough to validate rows that name `repo_id` (its family comes from that file)."""
    sha = hashlib.sha1(repo_id.encode()).hexdigest()
    source = tmp / sha
    source.mkdir(parents=True, exist_ok=True)
    (source / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    add_snapshot(session_hub(), repo_id, sha, source)
    point_ref(session_hub(), repo_id, sha)
    return sha
