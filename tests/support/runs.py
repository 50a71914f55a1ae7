"""Helpers for tests that render, kill and resume runs: the run dir as a test sees it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.compute as pc
import pytest

from pipeline.cli import main
from pipeline.outputs.encode import decode_clip
from pipeline.rundir.layout import RunDir, thumb_relpath
from pipeline.rundir.ledger import Ledger
from pipeline.rundir.storage import TMP_PREFIX
from tests.conftest import REPO, read_catalog


def ledger_keys(run_dir: Path) -> set[str]:
    """Keys the run dir's ledger holds (what a resume will skip)."""
    return set(Ledger(RunDir(str(run_dir))).read()["key"].to_pylist())


def clip_files(run_dir: Path) -> dict[str, int]:
    """Every file under clips/ -> its inode (a re-render replaces the file: new inode)."""
    root = run_dir / "clips"
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.stat().st_ino for p in root.rglob("*") if p.is_file()}


def joined_env(ray, **env_vars: str) -> dict:
    """Environment for a subprocess driver that joins the session's Ray as `ray job submit
    --runtime-env-json` runs a job: RAY_ADDRESS, and `env_vars` both in the driver's own
    environment and in the job config ray.init reads, so its actors get them too (the
    session's Ray was started without them). Saves a local Ray start (~8 CPU-s) per run."""
    config = {"runtime_env": {"env_vars": env_vars}}
    return {
        **env_vars,
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
        "RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps(config),
    }


def start_render(manifest: Path, out: Path, *flags: str, log: Path) -> subprocess.Popen:
    """`python -m pipeline render` in its own session, so every process it starts (its
    local Ray included) can be found by session id and killed with it."""
    handle = open(log, "wb")  # a file, not a pipe: a full pipe would stall the driver
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "render", str(manifest), "--out", str(out), *flags],
        cwd=REPO,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(os.environ),
    )


def session_processes(sid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def kill_session(proc: subprocess.Popen, on_killed=None) -> list[str]:
    """SIGKILL the driver, then whatever of its session outlived it (a local Ray's
    agents do). Returns the names of those leftovers, for the report. `on_killed` runs
    right after the driver is gone, before anything else of its session is killed."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    if on_killed is not None:
        on_killed()
    leftovers = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        alive = session_processes(proc.pid)
        if not alive:
            break
        time.sleep(0.2)  # give Ray's fate-sharing a moment before judging what lingers
    for child in session_processes(proc.pid):
        try:
            leftovers.append(child.name())
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(session_processes(proc.pid), timeout=10)
    return leftovers


def poll(condition, proc, log: Path | None, timeout: float = 180, interval: float = 0.05):
    """Wait until condition() is truthy; fail early with the log if the driver exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"driver exited with {proc.returncode} first:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {condition}")
        time.sleep(interval)


def render_actor_pids(root_pid: int) -> list[int]:
    """Render actor processes below `root_pid` (Ray titles them ray::RenderActor...)."""
    pids = []
    for child in psutil.Process(root_pid).children(recursive=True):
        try:
            if "ray::RenderActor" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:
            continue
    return pids


def wait_render_actors_gone(older: set[int] = frozenset(), timeout: float = 60) -> None:
    """Ray kills a dead driver's actors; wait, so none writes a clip after this point.
    `older`: render actors that were there before that driver started (another test's, on
    the session's Ray), which are not its to wait for."""
    poll(lambda: not set(render_actor_pids(os.getpid())) - set(older), None, None, timeout)


def render_actors_used(run_dir: Path) -> int:
    """Render actor processes a run used: started, or taken warm from an earlier
    in-process run (tests/conftest.py keeps them between the tests' jobs)."""
    startup = json.loads((run_dir / "summary.json").read_text())["startup"]
    return startup["actors_started"] + startup["actors_warm"]


def run_in_process(manifest: Path, out: Path, *flags: str) -> int:
    return main(["render", str(manifest), "--out", str(out), *flags])


def by_id(catalog, *columns: str) -> dict[str, tuple]:
    rows = catalog.select(["id", *columns]).to_pylist()
    return {row["id"]: tuple(row[c] for c in columns) for row in rows}


def assert_exactly_once(run_dir: Path, manifest_ids: list[str]) -> None:
    """Point 2: one row per manifest row; ok clips exist, decode, match sha256; the clips
    dir holds exactly the referenced files, no temp or partial file; thumbs/ holds one
    thumbnail per ok item and nothing else (it is written and swept like a clip)."""
    catalog = read_catalog(run_dir)
    assert sorted(catalog["id"].to_pylist()) == sorted(manifest_ids)
    ok = catalog.filter(pc.equal(catalog["status"], "ok"))
    referenced = set()
    for row in ok.select(["id", "uri", "sha256", "num_frames", "height", "width"]).to_pylist():
        path = Path(row["uri"].removeprefix("file://"))
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"], row["id"]
        shape = (row["num_frames"], row["height"], row["width"], 3)
        assert decode_clip(data).shape == shape, row["id"]
        referenced.add(str(path.relative_to(run_dir / "clips")))
    files = set(clip_files(run_dir))
    assert files == referenced, (files - referenced, referenced - files)
    assert not [f for f in files if Path(f).name.startswith(TMP_PREFIX)]
    thumbs = {p.relative_to(run_dir).as_posix() for p in (run_dir / "thumbs").rglob("*")}
    thumbs = {t for t in thumbs if not (run_dir / t).is_dir()}
    assert thumbs == {thumb_relpath(k) for k in ok["key"].to_pylist()}
