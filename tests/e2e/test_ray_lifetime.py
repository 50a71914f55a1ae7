"""Nothing left running (issue 11): a local Ray that promptreel started dies with its
driver, SIGKILL included; a bad manifest exits 2 and leaves nothing running.

The driver runs in its own session (start_render), so every process its Ray started is
found by session id; each is then tracked by pid and start time (a reused pid is not it).
"""

from __future__ import annotations

import os
import signal
import time

import psutil

from tests.conftest import prompt_rows, write_manifest
from tests.support.runs import clip_files, poll, render_actor_pids, session_processes, start_render

AFTER_KILL_S = 10.0  # the yardstick: what is still alive this long after a SIGKILL


def snapshot(sid: int) -> dict[tuple[int, float], str]:
    found = {}
    for proc in session_processes(sid):
        try:
            found[(proc.pid, proc.create_time())] = " ".join(proc.cmdline()) or proc.name()
        except psutil.Error:
            continue
    return found


def still_alive(processes) -> list[str]:
    alive = []
    for (pid, created), command in processes.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {command[:80]}")
        except psutil.Error:
            continue
    return alive


def survivors_after(processes, seconds: float) -> list[str]:
    """The processes still alive `seconds` from now; returns early once none is."""
    deadline = time.monotonic() + seconds
    while (alive := still_alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def kill_all(processes) -> None:
    for pid, _ in processes:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_sigkilled_driver_leaves_no_ray_process_alive(tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(200, height=64, width=64))
    out, log = tmp_path / "run", tmp_path / "render.log"
    # The null model: what its own Ray leaves behind is under test, not the diffusion; 200
    # items keep it rendering for seconds after its first clip.
    flags = ("--model", "null", "--flush-interval", "0.2", "--no-progress")
    proc = start_render(manifest, out, *flags, log=log)
    poll(lambda: clip_files(out) and render_actor_pids(proc.pid), proc, log, timeout=900)
    processes = snapshot(proc.pid)
    processes.pop((proc.pid, psutil.Process(proc.pid).create_time()))
    commands = " | ".join(processes.values())
    # What lingered before (Ray 2.60): the raylet's agents, reparented once it died.
    for name in ("raylet", "gcs_server", "DashboardAgent", "RuntimeEnvAgent", "RenderActor"):
        assert name in commands, commands
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert survivors_after(processes, AFTER_KILL_S) == []
    finally:
        kill_all(processes)


def test_bad_manifest_exits_2_and_leaves_nothing_running(tmp_path):
    rows = prompt_rows(3)
    rows[1]["seed"] = -5
    manifest = write_manifest(tmp_path / "bad.parquet", rows)
    out, log = tmp_path / "run", tmp_path / "render.log"
    proc = start_render(manifest, out, "--no-progress", log=log)
    seen: dict = {}

    def exited():
        seen.update(snapshot(proc.pid))  # whatever it started meanwhile (Ray, actors)
        return proc.poll() is not None

    poll(exited, None, None, timeout=900, interval=0.2)
    assert proc.returncode == 2, log.read_text()[-2000:]
    text = log.read_text()
    assert "row 1" in text and "seed" in text
    assert not (out / "clips").exists()
    try:
        assert survivors_after(seen, AFTER_KILL_S) == []
    finally:
        kill_all(seen)
