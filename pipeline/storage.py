"""Run-dir layout and atomic writes on any fsspec filesystem.

Local disks get temp-name-then-rename; object stores get one PUT of the finished
bytes, so a reader never sees a partial file on either.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from dataclasses import dataclass, field
from functools import cached_property

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipeline.errors import ConfigError

TMP_PREFIX = ".tmp-"


def open_fs(url: str, storage_options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"cannot open {url!r}: {exc}") from exc
    return fs, path


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def write_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` so that `path` is either absent, the old file, or complete."""
    parent = posixpath.dirname(path)
    if is_local(fs):
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f"{TMP_PREFIX}{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    else:
        fs.pipe_file(path, data)  # a single PUT: the object appears whole or not at all


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory. Ids never become paths: clips are named by key."""

    url: str
    storage_options: dict = field(default_factory=dict)

    @cached_property
    def _opened(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return open_fs(self.url, self.storage_options)

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return self._opened[0]

    @property
    def root(self) -> str:
        return self._opened[1].rstrip("/")

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def uri(self, path: str) -> str:
        """A URL that reads back with fsspec (protocol kept for remote stores)."""
        return self.fs.unstrip_protocol(path)

    def clip_path(self, key: str, ext: str) -> str:
        return self.path("clips", key[:2], f"{key}.{ext}")

    @property
    def job_json(self) -> str:
        return self.path("job.json")

    @property
    def catalog(self) -> str:
        return self.path("catalog.parquet")

    @property
    def summary(self) -> str:
        return self.path("summary.json")

    @property
    def report(self) -> str:
        return self.path("report.html")

    @property
    def ledger_dir(self) -> str:
        return self.path("_state", "ledger")

    @property
    def lock(self) -> str:
        return self.path("_state", "driver.lock")

    def read_bytes(self, path: str) -> bytes | None:
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError:
            return None

    def write(self, path: str, data: bytes) -> None:
        write_atomic(self.fs, path, data)
