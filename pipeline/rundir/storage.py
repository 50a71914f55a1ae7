"""Atomic writes and folders on any fsspec filesystem (local, s3://, gs://, ...).

Local disks get temp-name-then-rename; object stores get one PUT of the finished
bytes, so a reader never sees a partial file on either. Options come from
`--storage-options` and, for S3, from the standard AWS environment (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...), which botocore reads itself.

Storage round trips (docs/cluster.md has the measured costs):
  per item   2 PUTs, its thumbnail and its clip, by the render actor that made them
             (frames never reach the driver); nothing else per item is read or written.
  per flush  1 PUT of a ledger part and 1 PUT of the lock heartbeat (driver).
  per run    a constant handful: the preflight probe (PUT, GET, LIST, DELETE), job.json,
             lock, plan keys, ledger compaction, one LIST per 1,000 clips for the crash
             sweep, catalog.parquet, summary.json, report.html.
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
PROBE_PREFIX = ".probe-"
PROBE_BYTES = b"promptreel write probe; safe to delete\n"
# Stores where one upload call creates the object whole or not at all (S3 PUT and
# multipart-complete, GCS uploads, Azure block-blob commit).
SINGLE_PUT_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "oss", "r2", "memory"}
)
# Visible only inside one process: Ray render actors could not write clips there.
PROCESS_LOCAL_PROTOCOLS = frozenset({"memory"})
CREDENTIALS_HINT = (
    "check the credentials and endpoint: --storage-options "
    '\'{"key": ..., "secret": ..., "client_kwargs": {"endpoint_url": ...}}\' or the '
    "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_ENDPOINT_URL)"
)


def open_fs(url: str, storage_options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot open {url!r}: {exc}") from exc
    return fs, path


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


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
    elif SINGLE_PUT_PROTOCOLS.intersection(protocols(fs)):
        fs.pipe_file(path, data)  # a single PUT: the object appears whole or not at all
    else:  # other filesystems (sftp, hdfs, ...): write a temp name, then rename
        tmp = posixpath.join(parent, f"{TMP_PREFIX}{uuid.uuid4().hex}")
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)


def bucket_of(fs: fsspec.AbstractFileSystem, path: str) -> str | None:
    """The bucket (container) an object-store path lives in; None on a local disk."""
    return None if is_local(fs) else path.lstrip("/").split("/", 1)[0]


def describe_storage_error(fs: fsspec.AbstractFileSystem, path: str, exc: BaseException) -> str:
    """A one-line cause that names the bucket and what to check."""
    bucket = bucket_of(fs, path)
    text = " ".join(str(exc).split()) or type(exc).__name__
    name = type(exc).__name__
    if bucket is None:
        return f"{name}: {text}"
    if isinstance(exc, FileNotFoundError):
        return f"bucket {bucket!r} does not exist ({text}); create it or fix the URL"
    if isinstance(exc, PermissionError):
        return f"access to bucket {bucket!r} was denied ({text}); {CREDENTIALS_HINT}"
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return f"no credentials for bucket {bucket!r} ({text}); {CREDENTIALS_HINT}"
    return f"bucket {bucket!r}: {name}: {text}; {CREDENTIALS_HINT}"


@dataclass(frozen=True)
class Folder:
    """A folder on any fsspec filesystem (opened on first use) and the paths inside it."""

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
