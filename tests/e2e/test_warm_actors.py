"""Render actors kept warm between the jobs of one process (pipeline/driver/warm_actors.py):
the next job takes them instead of starting processes, and one that died while kept is
found when taken and replaced, never charged to the job that took it."""

from __future__ import annotations

import json
import os
import signal

from pipeline.driver import warm_actors
from tests.conftest import prompt_rows, write_manifest
from tests.support.runs import run_in_process

FLAGS = ("--model", "null", "--actors", "1", "--no-progress")


def _startup(out) -> dict:
    return json.loads((out / "summary.json").read_text())["startup"]


def test_the_next_job_takes_the_kept_actor_and_a_dead_one_is_replaced(ray_local, tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(3, prefix="warm"))
    assert run_in_process(manifest, tmp_path / "a", *FLAGS) == 0
    assert warm_actors.limit() == 2  # tests/conftest.py asks for it

    assert run_in_process(manifest, tmp_path / "b", *FLAGS) == 0
    assert (
        _startup(tmp_path / "b")["actors_started"],
        _startup(tmp_path / "b")["actors_warm"],
    ) == (0, 1)

    # Kill every kept actor's process: the next job pings, finds them dead, starts one.
    kept = [actor for pool in warm_actors._kept.values() for actor in pool]
    assert kept
    for actor in kept:
        os.kill(ray_local.get(actor.ping.remote()), signal.SIGKILL)
    assert run_in_process(manifest, tmp_path / "c", *FLAGS) == 0
    startup = _startup(tmp_path / "c")
    assert (startup["actors_started"], startup["actors_warm"]) == (1, 0)
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["counts"]["ok"] == 3, summary["counts"]
