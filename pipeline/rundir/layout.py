"""Every path under a run dir, and the one sweep of what a crash leaves behind.

    job.json                         the job: fingerprint, pins, versions (jobjson.py)
    clips/<k0k1>/<key>.<ext>         one clip per item, named by key (ids never become paths)
    thumbs/<k0k1>/<key>.webp         its animated poster
    inputs/<k0k1>/<key>.<name>.png   a media row's image(s) as the model got them (fitted;
                                     a video's first frame)
    catalog.parquet, summary.json, report.html
    _state/ledger/part-*.parquet     the checkpoint (ledger.py)
    _state/scores/<name>/part-*.parquet  each scorer's checkpoint (score_<name> columns)
    _state/driver.lock               one driver at a time (lock.py)
    _state/plan_keys.parquet         the plan's keys, so `status` counts pending items
    _state/media_hashes.json         media content hashes by location, size and version
    _state/stalled-<key>             test-only: the `stall` fault's mark (actor/faults.py)

No other module builds a run-dir path from strings.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pyarrow as pa

from pipeline.errors import ConfigError
from pipeline.rundir.storage import (
    PROBE_BYTES,
    PROBE_PREFIX,
    PROCESS_LOCAL_PROTOCOLS,
    TMP_PREFIX,
    Folder,
    describe_storage_error,
    protocols,
    write_atomic,
)

CLIPS_DIR = "clips"
THUMBS_DIR = "thumbs"
THUMB_EXT = "webp"
INPUTS_DIR = "inputs"
INPUT_EXT = "png"  # lossless: exactly the pixels the pipeline was given
ITEM_DIRS = (CLIPS_DIR, THUMBS_DIR, INPUTS_DIR)  # files named by item key: swept alike
STATE_DIR = "_state"
LEDGER_PART_PREFIX = "part-"
# Names of files a killed write leaves (never a clip, thumbnail or part of the ledger).
LEFTOVER_PREFIXES = (TMP_PREFIX, PROBE_PREFIX)


def shard(key: str) -> str:
    """The folder of a key's files: its first two hex characters."""
    return key[:2]


def clip_relpath(key: str, ext: str) -> str:
    """Relative to the run dir (the report and exports link clips this way)."""
    return f"{CLIPS_DIR}/{shard(key)}/{key}.{ext}"


def thumb_relpath(key: str) -> str:
    return f"{THUMBS_DIR}/{shard(key)}/{key}.{THUMB_EXT}"


def input_relpath(key: str, name: str) -> str:
    """A media input of the item (`image`, `last_image`), fitted to its size."""
    return f"{INPUTS_DIR}/{shard(key)}/{key}.{name}.{INPUT_EXT}"


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def ledger_part_sequence(path: str) -> int:
    """The write order of a ledger part, from its name (RunDir.ledger_part makes it)."""
    return int(_name(path).split("-")[1])


def is_leftover(path: str) -> bool:
    return _name(path).startswith(LEFTOVER_PREFIXES)


@dataclass(frozen=True)
class RunDir(Folder):
    """One run directory on any fsspec filesystem: its paths, reads and atomic writes."""

    def uri(self, path: str) -> str:
        """A URL that reads back with fsspec (protocol kept for remote stores)."""
        return self.fs.unstrip_protocol(path)

    def clip_path(self, key: str, ext: str) -> str:
        return self.path(*clip_relpath(key, ext).split("/"))

    def thumb_path(self, key: str) -> str:
        return self.path(*thumb_relpath(key).split("/"))

    def input_path(self, key: str, name: str) -> str:
        return self.path(*input_relpath(key, name).split("/"))

    @property
    def clips_dir(self) -> str:
        return self.path(CLIPS_DIR)

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
    def state_dir(self) -> str:
        return self.path(STATE_DIR)

    @property
    def ledger_dir(self) -> str:
        return self.path(STATE_DIR, "ledger")

    def score_ledger_dir(self, scorer: str) -> str:
        """One ledger per scorer (its name: a registry name, never user text)."""
        return self.path(STATE_DIR, "scores", scorer)

    def ledger_part(self, sequence: int, folder: str | None = None) -> str:
        """A new part of the ledger in `folder` (the render ledger's by default): name
        order is write order (ledger.py)."""
        name = f"{LEDGER_PART_PREFIX}{sequence:012d}-{uuid.uuid4().hex[:8]}.parquet"
        return f"{folder or self.ledger_dir}/{name}"

    @property
    def lock(self) -> str:
        return self.path(STATE_DIR, "driver.lock")

    @property
    def plan_keys(self) -> str:
        return self.path(STATE_DIR, "plan_keys.parquet")

    @property
    def media_hashes(self) -> str:
        return self.path(STATE_DIR, "media_hashes.json")

    def stall_mark(self, key: str) -> str:
        return self.path(STATE_DIR, f"stalled-{key}")

    def probe_path(self) -> str:
        return self.path(STATE_DIR, f"{PROBE_PREFIX}{uuid.uuid4().hex}")

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

    def list_dir(self, folder: str) -> list[str]:
        """Paths directly in `folder` ([] when it does not exist)."""
        try:
            return self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []

    def item_files(self, folders: tuple[str, ...] = ITEM_DIRS) -> list[str]:
        """Every file under clips/, thumbs/ and inputs/ (one LIST per 1,000 files on object
        stores)."""
        paths = []
        for folder in folders:
            try:
                paths += self.fs.find(self.path(folder))
            except FileNotFoundError:
                pass
        return paths

    def sweep(self, keep_keys: pa.Array) -> int:
        """The one sweep of what a killed run leaves (we hold the lock): temp files and
        probes anywhere in the run dir, and clips, thumbnails and inputs no ok ledger row names.
        Returns how many files it removed."""
        keep = set(keep_keys.to_pylist())
        doomed = [
            path
            for folder in (self.root, self.state_dir, self.ledger_dir)
            for path in self.list_dir(folder)
            if is_leftover(path)
        ]
        doomed += [
            path
            for path in self.item_files()
            if is_leftover(path) or _name(path).split(".", 1)[0] not in keep
        ]
        for path in doomed:
            self.fs.rm_file(path)
        return len(doomed)


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
    probe = run.probe_path()
    step = "write"
    try:
        run.write(probe, PROBE_BYTES)
        step = "read back"
        if fs.cat_file(probe) != PROBE_BYTES:
            raise OSError("the probe object read back with different bytes")
        step = "list"
        fs.invalidate_cache(run.state_dir)
        names = {_name(path) for path in fs.ls(run.state_dir, detail=False)}
        if _name(probe) not in names:
            raise OSError("the probe object is missing from its directory listing")
        step = "delete"
        fs.rm_file(probe)
    except Exception as exc:  # noqa: BLE001 - every cause becomes one clear message
        cause = describe_storage_error(fs, probe, exc)
        raise ConfigError(
            f"cannot use {run.url} as a run dir: {step} of a probe object failed: {cause}"
        ) from exc
