"""One driver per run dir: a lock file with a heartbeat that a dead driver cannot hold.

The lock is stale when its heartbeat is older than `ttl_s`, or at once when it names a
process on this host that no longer exists. A stale lock is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import psutil

from pipeline.errors import ConfigError
from pipeline.storage import RunDir


def _process_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
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
        }

    def holder(self) -> dict | None:
        data = self.run.read_bytes(self.run.lock)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return {}  # a torn or foreign file: treat as stale

    def is_stale(self, holder: dict) -> bool:
        if not holder or time.time() - holder.get("heartbeat", 0) > self.ttl_s:
            return True
        if holder.get("host") == self.record["host"]:
            started = _process_start(holder.get("pid", -1))
            return started is None or started != holder.get("pid_started")
        return False

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
        self.run.write(self.run.lock, json.dumps({**self.record, "heartbeat": time.time()}).encode())

    def release(self) -> None:
        if (self.holder() or {}).get("token") == self.token:
            self.run.fs.rm_file(self.run.lock)
