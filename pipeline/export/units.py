"""Units of an export and the loop that writes the missing ones, the datatrove way.

A unit is one piece of output that is complete before its marker exists: a clip file
(its own marker: written whole), a WebDataset shard (tar + parquet, then its
`_stats.json`), an index file. A run lists DEST once, removes temp leftovers, skips
every complete unit, writes the rest, and writes the export's final index last, so a
partial export never looks complete. DEST may hold only what this export writes: a file
from another export (other catalog, other options) stops it before anything is written.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from pipeline.errors import ConfigError

MAX_LISTED = 10  # conflicting paths named in one error


class Conflict(Exception):
    """DEST holds a file this export would not write with these bytes."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


class Unit:
    """One piece of output. `outputs` are every path it writes (the marker last)."""

    outputs: tuple[str, ...]
    bytes: int = 0  # clip bytes it carries, for the throughput line

    def complete(self, listing: dict[str, int], dest) -> bool:
        raise NotImplementedError

    def write(self, dest) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class FileUnit(Unit):
    """A file copied whole from the run (a clip): complete when present at its size."""

    path: str
    size: int
    produce: object  # () -> bytes

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.path,)

    @property
    def bytes(self) -> int:
        return self.size

    def complete(self, listing, dest) -> bool:
        found = listing.get(self.path)
        if found is None:
            return False
        if found != self.size:
            raise Conflict(self.path, f"{found} bytes where this export writes {self.size}")
        return True

    def write(self, dest) -> None:
        dest.write_bytes(self.path, self.produce())


@dataclass(frozen=True)
class IndexUnit(Unit):
    """A small file whose bytes are known up front (index.csv, metadata.jsonl, ...)."""

    path: str
    data: bytes

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.path,)

    def complete(self, listing, dest) -> bool:
        if self.path in listing or dest.size(self.path) is not None:
            if dest.read_bytes(self.path) == self.data:
                return True
            raise Conflict(self.path, "differs from the index this export writes")
        return False

    def write(self, dest) -> None:
        dest.write_bytes(self.path, self.data)


@dataclass(frozen=True)
class ExportStats:
    units: int
    written: int
    skipped: int
    clip_bytes: int
    wall_s: float


def _conflict_error(dest, conflicts: list[Conflict]) -> ConfigError:
    lines = [f"{dest.relative(c.path)}: {c.reason}" for c in conflicts[:MAX_LISTED]]
    if len(conflicts) > MAX_LISTED:
        lines.append(f"... and {len(conflicts) - MAX_LISTED} more")
    return ConfigError(
        f"{dest.url} holds {len(conflicts)} file(s) this export would not write (another "
        "export: a different catalog or options, or files of your own); export to an empty "
        "or new DEST, or remove them:\n  " + "\n  ".join(lines)
    )


def plan_work(units: list[Unit], final: Unit, dest, listing: dict[str, int]):
    """(units still to write, whether the final index is already in place); every
    conflict found is raised at once (exit 2) before anything is written."""
    expected = {path for unit in (*units, final) for path in unit.outputs}
    conflicts, todo, final_done = [], [], False
    for unit in (*units, final):
        try:
            if not unit.complete(listing, dest):
                todo.append(unit)
            elif unit is final:
                final_done = True
        except Conflict as conflict:
            conflicts.append(conflict)
    foreign = [path for path in sorted(listing) if path not in expected]
    conflicts += [Conflict(path, "not part of this export") for path in foreign]
    if conflicts:
        raise _conflict_error(dest, conflicts)
    return [unit for unit in todo if unit is not final], final_done


class _KillSwitch:
    """Tests only: SIGKILL this process right after the Nth unit is written, from the
    thread that wrote it, while other units may be half-written (as an OOM-kill or a
    pre-empted node would)."""

    def __init__(self, after: int | None):
        self.after, self.done, self.lock = after, 0, threading.Lock()

    def count(self) -> None:
        if self.after is None:
            return
        with self.lock:
            self.done += 1
            if self.done >= self.after:
                os.kill(os.getpid(), signal.SIGKILL)


def write_units(
    units: list[Unit],
    final: Unit,
    dest,
    workers: int = 8,
    progress: bool = False,
    stop_after: int | None = None,
) -> ExportStats:
    """Write every missing unit (in a thread pool: storage round trips dominate), then the
    final index. `stop_after`: see _KillSwitch."""
    started = time.perf_counter()
    listing = dest.remove_temp_files(dest.listing())
    todo, final_done = plan_work(units, final, dest, listing)
    if todo and final_done:
        # Units are missing (removed by hand?): take the index away until they are back.
        dest.fs.rm_file(final.path)
        final_done = False
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="file", dynamic_ncols=True, file=sys.stderr)
    counter = _KillSwitch(stop_after)

    def write(unit: Unit) -> None:
        unit.write(dest)
        counter.count()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(write, unit) for unit in todo}
        while futures:
            done, futures = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise future.exception()
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    if not final_done:
        final.write(dest)
    return ExportStats(
        units=len(units),
        written=len(todo),
        skipped=len(units) - len(todo),
        clip_bytes=sum(unit.bytes for unit in todo),
        wall_s=time.perf_counter() - started,
    )
