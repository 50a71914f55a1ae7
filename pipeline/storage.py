"""Run-dir layout and atomic writes on any fsspec filesystem (local, s3://, gs://, ...).

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


@dataclass(frozen=True)
class RunDir(Folder):
    """Paths inside one run directory. Ids never become paths: clips are named by key."""

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
        """The file's bytes, or None if it does not exist; denied access is a ConfigError."""
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            cause = describe_storage_error(self.fs, path, exc)
            raise ConfigError(f"cannot read {self.uri(path)}: {cause}") from exc

    def write(self, path: str, data: bytes) -> None:
        write_atomic(self.fs, path, data)


def check_run_dir_writable(run: RunDir) -> None:
    """Preflight before any rendering: PUT, GET, LIST and DELETE one small probe object
    under `_state/`, so bad credentials, a missing bucket, a read-only store or an
    unreachable endpoint fail at once, naming the bucket and the cause (ConfigError,
    exit 2), instead of after the model has loaded. Four round trips, once per run."""
    fs = run.fs
    if PROCESS_LOCAL_PROTOCOLS.intersection(protocols(fs)):
        raise ConfigError(
            f"{run.url}: {protocols(fs)[0]}:// is private to one process, and render actors run "
            "in other processes; use a local path or an object store (s3://, gs://, ...)"
        )
    state = run.path("_state")
    probe = posixpath.join(state, f"{PROBE_PREFIX}{uuid.uuid4().hex}")
    step = "write"
    try:
        run.write(probe, PROBE_BYTES)
        step = "read back"
        if fs.cat_file(probe) != PROBE_BYTES:
            raise OSError("the probe object read back with different bytes")
        step = "list"
        fs.invalidate_cache(state)
        names = {path.rsplit("/", 1)[-1] for path in fs.ls(state, detail=False)}
        if probe.rsplit("/", 1)[-1] not in names:
            raise OSError("the probe object is missing from its directory listing")
        step = "delete"
        fs.rm_file(probe)
    except Exception as exc:  # noqa: BLE001 - every cause becomes one clear message
        cause = describe_storage_error(fs, probe, exc)
        raise ConfigError(
            f"cannot use {run.url} as a run dir: {step} of a probe object failed: {cause}"
        ) from exc
