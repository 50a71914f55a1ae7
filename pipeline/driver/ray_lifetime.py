"""A local Ray that promptreel starts dies with its driver, also when the driver is SIGKILLed.

Ray ties the processes the driver starts itself (gcs_server, raylet, ...) to its life with
PR_SET_PDEATHSIG, but not their children: measured (Ray 2.60), 10 s after a SIGKILL of
the driver its DashboardAgent and RuntimeEnvAgent were still alive (reparented to init,
their command lines retitled, so no session dir to find them by).

So a small watchdog process, started first, holds the read end of a pipe from the driver.
The pipe closes when the driver exits in any way (the kernel closes its fds, SIGKILL
included); the watchdog then terminates that Ray's processes, and exits. Which ones:
  - every process with a marker in its environment (set while `ray.init` starts the
    services; workers and their ffmpeg children inherit it from the raylet), and
  - every child of those seen while the driver lived (polled each second): the raylet
    starts its agents with an environment of its own (measured: no marker), and they are
    reparented, and retitled `ray::DashboardAgent`, once the raylet is gone.
A process is matched by pid and start time, so a reused pid is never hit. A run that
joined a cluster (--address / RAY_ADDRESS) starts no watchdog: that cluster is left alone.

    python -m pipeline.driver.ray_lifetime MARKER    (started by `start_watchdog`; stdin = the pipe)
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
import uuid

MARKER_VARIABLE = "PROMPTREEL_RAY_OWNER"
TERM_GRACE_S = 2.0  # SIGTERM first (Ray's processes exit cleanly), then SIGKILL
POLL_S = 1.0  # how often the watchdog records the driver's descendants
SWEEP_LIMIT_S = 6.0  # a dying raylet may still spawn a worker: sweep until none for a while


_watchdogs: list[
    subprocess.Popen
] = []  # referenced for the driver's life: closing the pipe fires it


@contextlib.contextmanager
def tied_to_this_process():
    """Start a local Ray inside this block: all its processes die with this one."""
    marker = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    _watchdogs.append(start_watchdog(marker))
    with marked_environment(marker):
        yield


@contextlib.contextmanager
def marked_environment(marker: str):
    """Processes started inside carry the marker; the driver's own later children do not
    (a test runner's next subprocess must never be mistaken for this Ray's)."""
    previous = os.environ.get(MARKER_VARIABLE)
    os.environ[MARKER_VARIABLE] = marker
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(MARKER_VARIABLE, None)
        else:
            os.environ[MARKER_VARIABLE] = previous


def start_watchdog(marker: str) -> subprocess.Popen:
    """The watchdog, in its own session (a terminal's Ctrl-C or a kill of the driver's
    process group does not reach it). Its stdin is the driver's end of the pipe: kept open
    (never written) for the driver's life. The pipe end is not inherited by Ray's processes
    (close_fds), so only the driver's exit closes it."""
    env = {k: v for k, v in os.environ.items() if k != MARKER_VARIABLE}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.driver.ray_lifetime", marker],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time in clock ticks, state) from /proc, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19]), fields[0].decode()


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(roots: set[int]) -> set[tuple[int, int]]:
    """(pid, start time) of every live process below the `roots` pids."""
    children: dict[int, list[tuple[int, int]]] = {}
    for pid in _pids():
        stat = _stat(pid)
        if stat is not None:
            children.setdefault(stat[0], []).append((pid, stat[1]))
    found, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child[0])
    return found


def marked(marker: str, known: dict | None = None) -> set[tuple[int, int]]:
    """(pid, start time) of live processes whose environment holds the marker. `known`
    caches the answer per process, so a poll reads only new processes' environments."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    previous = {} if known is None else dict(known)
    current = {}
    for pid in _pids():
        stat = _stat(pid)
        if stat is None or pid == os.getpid():
            continue
        process = (pid, stat[1])
        if process in previous:
            current[process] = previous[process]
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                current[process] = needle in handle.read().split(b"\0")
        except OSError:  # gone, or another user's
            current[process] = False
    if known is not None:  # only live processes: a long run's ffmpegs do not pile up
        known.clear()
        known.update(current)
    return {process for process, hit in current.items() if hit}


def alive(process: tuple[int, int]) -> bool:
    stat = _stat(process[0])
    return stat is not None and stat[1] == process[1] and stat[2] != "Z"


def terminate(marker: str, seen: set[tuple[int, int]]) -> int:
    """SIGTERM, then SIGKILL, the marked and seen processes until none is left."""
    killed: set[tuple[int, int]] = set()
    quiet_since = None
    deadline = time.monotonic() + SWEEP_LIMIT_S + TERM_GRACE_S
    while time.monotonic() < deadline:
        targets = [p for p in marked(marker) | seen if alive(p)]
        if not targets:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 0.5:
                break
            time.sleep(0.1)
            continue
        quiet_since = None
        for process in targets:
            _signal(process[0], signal.SIGKILL if process in killed else signal.SIGTERM)
            killed.add(process)
        _wait_gone(targets, TERM_GRACE_S)
        for process in targets:
            if alive(process):
                _signal(process[0], signal.SIGKILL)
    return len(killed)


def _wait_gone(processes: list[tuple[int, int]], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(alive(p) for p in processes):
        time.sleep(0.1)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signum)


def main(argv: list[str]) -> int:
    marker = argv[0]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the pipe's end decides
    seen: set[tuple[int, int]] = set()
    known: dict = {}
    while True:
        readable, _, _ = select.select([sys.stdin.buffer], [], [], POLL_S)
        if readable and not os.read(sys.stdin.fileno(), 4096):
            break  # every writer is gone: the driver has exited
        ours = marked(marker, known)
        seen |= ours | descendants({pid for pid, _ in ours})
    terminate(marker, seen)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
