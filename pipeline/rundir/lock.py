"""One driver per run dir: a lock file with a heartbeat that a dead driver cannot hold.

On the lock holder's own host its process is checked directly: the lock is stale at
once when that process is gone (or a zombie), and never while it lives (a driver
that waits minutes for its actors to load a model keeps its run dir). From another
host only the heartbeat can be seen: the lock is stale when it is older than the
holder's `ttl_s`. A stale lock is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import psutil

from pipeline.errors import ConfigError
from pipeline.rundir.layout import RunDir


def _process_start(pid: int) -> float | None:
    """Start time of a live process, None if it is gone (a zombie counts as gone)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


class DriverLock:
    def __init__(self, run: RunDir, ttl_s: float = 120.0):
        self.run = run
        self.ttl_s = ttl_s
        self.token = uuid.uuid4().hex
        self.record = {
            "token": self.token,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_started": _process_start(os.getpid()),
            "ttl_s": ttl_s,
        }

    def holder(self) -> dict | None:
        data = self.run.read_bytes(self.run.lock)
        if data is None:
            return None
        try:
            holder = json.loads(data)
        except ValueError:
            return {}  # a torn or foreign file: treat as stale
        return holder if isinstance(holder, dict) else {}

    def is_stale(self, holder: dict) -> bool:
        if not holder:
            return True
        if holder.get("host") == self.record["host"] and holder.get("pid_started") is not None:
            started = _process_start(holder.get("pid", -1))
            return started is None or started != holder.get("pid_started")
        ttl_s = holder.get("ttl_s") or self.ttl_s
        return time.time() - holder.get("heartbeat", 0) > ttl_s

    def acquire(self) -> None:
        holder = self.holder()
        if holder is not None and not self.is_stale(holder):
            age = time.time() - holder.get("heartbeat", 0)
            raise ConfigError(
                f"another driver is running on {self.run.url} (pid {holder.get('pid')} on "
                f"{holder.get('host')}, heartbeat {age:.0f}s ago); wait for it to finish, or "
                f"remove {self.run.lock} if you are sure it is gone"
            )
        self.heartbeat()
        # Two drivers racing for a stale lock: the last writer wins, the other sees it.
        time.sleep(0.05)
        if (self.holder() or {}).get("token") != self.token:
            raise ConfigError(f"another driver took the lock on {self.run.url} just now")

    def heartbeat(self) -> None:
        self.run.write(
            self.run.lock, json.dumps({**self.record, "heartbeat": time.time()}).encode()
        )

    def release(self) -> None:
        if (self.holder() or {}).get("token") == self.token:
            try:
                self.run.fs.rm_file(self.run.lock)
            except FileNotFoundError:
                pass
