"""Where an export goes: a local folder or any fsspec URL, written one complete file at a
time (temp name then rename locally, one PUT or one multipart upload on object stores),
so a reader never sees half a file and a killed export leaves only `.tmp-*` names,
which the next run removes."""

from __future__ import annotations

import os
import posixpath
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.rundir.storage import (
    SINGLE_PUT_PROTOCOLS,
    TMP_PREFIX,
    Folder,
    describe_storage_error,
    is_local,
    protocols,
    write_atomic,
)


@dataclass(frozen=True)
class Dest(Folder):
    """The export's destination folder."""

    def beside(self, suffix: str) -> str:
        """A path next to DEST (not in it): `vbench/run1` -> `vbench/run1<suffix>`."""
        return self.root + suffix

    def uri(self, path: str) -> str:
        return self.fs.unstrip_protocol(path)

    def relative(self, path: str) -> str:
        return posixpath.relpath(path, self.root) if path.startswith(self.root + "/") else path

    def listing(self) -> dict[str, int]:
        """Every file under DEST with its size ({} when DEST does not exist yet)."""
        try:
            self.fs.invalidate_cache(self.root)
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(
                f"cannot list {self.url}: {describe_storage_error(self.fs, self.root, exc)}"
            ) from exc
        return {
            path: info.get("size") or 0
            for path, info in found.items()
            if info.get("type") != "directory"
        }

    def size(self, path: str) -> int | None:
        try:
            return self.fs.info(path).get("size") or 0
        except FileNotFoundError:
            return None

    def read_bytes(self, path: str) -> bytes | None:
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError:
            return None

    def remove_temp_files(self, listing: dict[str, int]) -> dict[str, int]:
        """Delete what a killed export left half-written; return the listing without it."""
        kept = {}
        for path, size in listing.items():
            if posixpath.basename(path).startswith(TMP_PREFIX):
                self.fs.rm_file(path)
            else:
                kept[path] = size
        return kept

    def write_bytes(self, path: str, data: bytes) -> None:
        try:
            write_atomic(self.fs, path, data)
        except OSError as exc:
            raise ConfigError(
                f"cannot write {self.uri(path)}: {describe_storage_error(self.fs, path, exc)}"
            ) from exc

    @contextmanager
    def staged(self, path: str):
        """A local temp file to build a big output in (a tar shard); on a clean exit it
        becomes `path` whole. Local DEST: the temp sits beside `path` (same disk, so the
        rename is atomic, and a kill leaves a `.tmp-*` the next run removes)."""
        local = is_local(self.fs)
        if local:
            os.makedirs(posixpath.dirname(path), exist_ok=True)
            staging = posixpath.join(posixpath.dirname(path), f"{TMP_PREFIX}{uuid.uuid4().hex}")
        else:
            handle, staging = tempfile.mkstemp(prefix=TMP_PREFIX)
            os.close(handle)
        try:
            yield staging
            if local:
                os.replace(staging, path)
            else:
                self._upload(staging, path)
        finally:
            if os.path.exists(staging):
                os.unlink(staging)

    def _upload(self, local_path: str, path: str) -> None:
        fs = self.fs
        try:
            if SINGLE_PUT_PROTOCOLS.intersection(protocols(fs)):
                fs.put_file(local_path, path)  # one PUT or one multipart upload: whole or absent
            else:
                tmp = posixpath.join(posixpath.dirname(path), f"{TMP_PREFIX}{uuid.uuid4().hex}")
                fs.put_file(local_path, tmp)
                fs.mv(tmp, path)
        except OSError as exc:
            raise ConfigError(
                f"cannot write {self.uri(path)}: {describe_storage_error(fs, path, exc)}"
            ) from exc
