"""Shared helpers for the benchmarks: measured subprocesses, tables, result files.

Every benchmark runs the things it compares as subprocesses of one Python process, on
the same machine, in the same run, and reports ratios. No timed assertions anywhere.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
# `python -m pipeline ...` runs from here: set PROMPTREEL_BENCH_SRC to another checkout
# (e.g. a patched copy) to A/B it against the plain loop and the limit on the same machine.
SRC = Path(os.environ.get("PROMPTREEL_BENCH_SRC") or REPO).resolve()
RESULTS = Path(__file__).resolve().parent / "results"
PY = sys.executable


def bench_env(**extra: str) -> dict:
    """Environment for child processes: local Ray on loopback (as the Makefile sets it)."""
    env = dict(os.environ)
    env.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.update(extra)
    return env


@dataclass
class Measured:
    """One subprocess: wall time, exit code, and what psutil / wait4 saw of it."""

    cmd: list[str]
    wall_s: float = 0.0
    rc: int | None = None
    started_at: float = 0.0  # time.time() just before the spawn
    peak_rss_mb: float = 0.0  # wait4 ru_maxrss: the process and its waited-for children
    polled_rss_mb: float = 0.0  # max RSS of the root process seen by polling
    driver_cpu_s: float = 0.0  # user+system of the root process only (last sample)
    tree_cpu_s: dict = field(default_factory=dict)  # role -> CPU seconds (tree mode)
    log: str = ""
    samples: list = field(default_factory=list)  # (time.time(), driver CPU s), each poll

    def driver_cpu_pct_between(self, start: float, end: float) -> float | None:
        """% of one core the root process used between two time.time() stamps."""
        inside = [(t, c) for t, c in self.samples if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return 100.0 * (c1 - c0) / (t1 - t0)

    @property
    def driver_cpu_pct(self) -> float:
        return 100.0 * self.driver_cpu_s / self.wall_s if self.wall_s else 0.0

    def brief(self) -> dict:
        out = asdict(self)
        out.pop("samples")
        out["driver_cpu_pct"] = round(self.driver_cpu_pct, 2)
        return out


def _role(proc: psutil.Process) -> str:
    try:
        line = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if "default_worker" in line or line.startswith("ray::"):
        return "ray_workers"
    if "ffmpeg" in line:
        return "ffmpeg_unreaped"
    return "ray_services"


def run_measured(
    cmd: list[str],
    log_path: Path,
    *,
    tree: bool = False,
    poll_s: float = 0.1,
    tree_every: int = 5,
    env: dict | None = None,
    cwd: Path | None = None,
) -> Measured:
    """Run `cmd` to completion; poll the root's CPU/RSS (and the process tree if asked).

    Tree mode sums, per process, the last user+system seen; for Ray worker processes it
    adds children_user/children_system too, which is where their reaped ffmpeg processes
    land. CPU spent in the last poll interval before a process exits is not seen.
    """
    measured = Measured(cmd=[str(c) for c in cmd], log=str(log_path))
    if cwd is None:  # promptreel commands run from SRC, everything else from this repo
        cwd = SRC if cmd[1:3] == ["-m", "pipeline"] else REPO
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        measured.started_at = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(
            measured.cmd, stdout=log, stderr=subprocess.STDOUT, env=env or bench_env(), cwd=cwd
        )
        root = psutil.Process(proc.pid)
        seen: dict[int, tuple[str, float]] = {}
        roles: dict[int, str] = {}
        tick = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                measured.wall_s = time.perf_counter() - start
                break
            try:
                times = root.cpu_times()
                measured.driver_cpu_s = times.user + times.system
                measured.samples.append((time.time(), measured.driver_cpu_s))
                measured.polled_rss_mb = max(measured.polled_rss_mb, root.memory_info().rss / 2**20)
                children = root.children(recursive=True) if tree and tick % tree_every == 0 else []
            except psutil.Error:
                children = []
            for child in children:
                try:
                    role = roles.setdefault(child.pid, _role(child))
                    t = child.cpu_times()
                except psutil.Error:
                    continue
                cpu = t.user + t.system
                if role == "ray_workers":
                    cpu += t.children_user + t.children_system
                seen[child.pid] = (role, cpu)
            tick += 1
            time.sleep(poll_s)
        proc.returncode = measured.rc = os.waitstatus_to_exitcode(status)
    measured.peak_rss_mb = usage.ru_maxrss / 1024.0  # KiB on Linux
    if tree:
        totals = {"driver": measured.driver_cpu_s}
        for role, cpu in seen.values():
            totals[role] = totals.get(role, 0.0) + cpu
        measured.tree_cpu_s = {k: round(v, 3) for k, v in totals.items()}
    return measured


def check_ok(measured: Measured, what: str) -> None:
    if measured.rc != 0:
        tail = Path(measured.log).read_text(errors="replace")[-3000:]
        raise SystemExit(f"{what} failed (exit {measured.rc}); log {measured.log}:\n{tail}")


def parse_variant(name: str) -> dict:
    """'a2-t1-e1-b4' -> actors 2, threads 1, encode workers 1, batch size 4 (any subset)."""
    letters = {"a": "actors", "t": "threads", "e": "encode_workers", "b": "batch_size"}
    return {letters[part[0]]: int(part[1:]) for part in name.split("-")}


def variant_flags(variant: dict) -> list[str]:
    flags = []
    for name, value in variant.items():
        flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags


def pipeline_cmd(*args) -> list[str]:
    return [PY, "-m", "pipeline", *map(str, args)]


def machine() -> dict:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "load_avg_1_5_15_at_start": list(_START_LOAD),
        "load_avg_1_5_15_at_end": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "promptreel_src": str(SRC),
    }


def load_note() -> str:
    load = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    busy = "SHARED/BUSY" if load >= 1.0 else "quiet"
    src = "" if SRC == REPO else f"; promptreel from {SRC}"
    return f"machine: {cpus} cores, 1-min load {load:.2f} at start ({busy}){src}"


def table(headers: list[str], rows: list[list]) -> str:
    """A plain fixed-width text table."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in cells:
        out.append(
            "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])])
        )
    return "\n".join(out)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


class Workdir:
    """A temp dir for manifests, run dirs and logs; removed unless --keep."""

    def __init__(self, name: str, keep: bool = False, base: str | None = None):
        self.path = Path(tempfile.mkdtemp(prefix=f"promptreel-bench-{name}-", dir=base))
        self.keep = keep

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        if self.keep:
            print(f"kept work dir {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


PROMPT_WORDS = (
    "a red fox",
    "an old lighthouse",
    "a paper boat",
    "two cats",
    "a neon city street",
    "a quiet forest lake",
    "a steam train",
    "a hot air balloon",
    "a snowy mountain pass",
    "a jazz band",
    "a field of sunflowers",
    "an astronaut",
)
PROMPT_ACTIONS = (
    "drifting slowly",
    "seen from above",
    "at golden hour",
    "in heavy rain",
    "under a starry sky",
    "in the morning fog",
)


def make_prompt(i: int, length: int = 0) -> str:
    """A deterministic, distinct English-ish prompt; padded to about `length` chars."""
    text = (
        f"{PROMPT_WORDS[i % len(PROMPT_WORDS)]} "
        f"{PROMPT_ACTIONS[(i // len(PROMPT_WORDS)) % len(PROMPT_ACTIONS)]}, "
        f"cinematic, scene {i}"
    )
    filler = ", soft light, 35mm film, shallow depth of field, slow camera pan"
    while len(text) < length:
        text += filler
    return text[:length] if length else text


_START_LOAD: list[float] = []


def header(title: str) -> None:
    _START_LOAD[:] = [round(x, 2) for x in os.getloadavg()]
    print(f"\n== {title} ==\n{load_note()}", flush=True)
