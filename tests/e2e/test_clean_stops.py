"""Runs that stop early and end well (issue 11): a deadline, SIGINT/SIGTERM once (in-flight
work finishes, or is abandoned after --stop-grace), a second signal (stops at once); each
exits 4 and a resume gives the same pixels as an uninterrupted run. `status --watch`.

Real subprocesses (joining the session's Ray with --address: the driver's signal handling
is under test, not a Ray start); progress is found by polling the run dir, never by
sleeping. The last
planned batch is made to hang (the test-only `hang` fault) wherever a signal must land
before the run could end. The null model: the stopping machinery is under test here, not
the diffusion (its frames are still a pure function of the request, compared on resume).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import pyarrow.compute as pc
import pytest

from pipeline.config import RenderSettings, RunConfig
from pipeline.driver.job import load_and_plan
from tests.conftest import prompt_rows, read_catalog, run_cli, write_manifest
from tests.support.runs import (
    assert_exactly_once,
    by_id,
    ledger_keys,
    poll,
    run_in_process,
    start_render,
)

ITEMS = 32  # 8 batches of 4: a stop after the first results leaves most pending
FLAGS = ("--model", "null", "--batch-size", "4", "--flush-interval", "0.2", "--no-progress")
PLANNED = RunConfig(manifest="", out="", render=RenderSettings(model="null", batch_size=4))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stops") / "prompts.parquet"
    return write_manifest(path, prompt_rows(ITEMS, prefix="stop", height=64, width=64))


@pytest.fixture(scope="module")
def baseline(ray_local, manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("stops-baseline") / "run"
    assert run_in_process(manifest, out, *FLAGS) == 0
    return by_id(read_catalog(out), "frames_sha256", "sha256")


@pytest.fixture(scope="module")
def joined(ray_local) -> tuple[str, str]:
    """Flags for a subprocess driver that joins the session's Ray."""
    return ("--address", ray_local.get_runtime_context().gcs_address)


@pytest.fixture(scope="module")
def last_batch(manifest) -> tuple[str, set[str]]:
    """A prompt of the last planned batch (dispatched last) and that batch's keys."""
    _, plan = load_and_plan(dataclasses.replace(PLANNED, manifest=str(manifest)))
    batch = list(plan.batches(plan.items["key"]))[-1]
    return batch.items[0].prompt, set(batch.keys)


def wait_for(condition, proc, log):
    return poll(condition, proc, log, timeout=900, interval=0.1)


def finish(proc, log) -> int:
    code = proc.wait(timeout=900)
    print(log.read_text()[-2000:])
    return code


def assert_stopped_with_pending(out: Path, manifest_ids, reason: str) -> dict:
    """Exit-4 state: a catalog listing every row (finished ones complete, the rest
    pending, nothing half-written), and summary.json naming the reason."""
    assert_exactly_once(out, manifest_ids)
    counts = dict(zip(*pc.value_counts(read_catalog(out)["status"]).flatten()))
    counts = {k.as_py(): v.as_py() for k, v in counts.items()}
    assert counts.get("pending", 0) > 0 and "failed" not in counts, counts
    assert json.loads((out / "summary.json").read_text())["stopped"] == reason
    return counts


def assert_resume_matches(manifest, out: Path, baseline: dict) -> None:
    # In-process on the session's Ray: the resume's pixels are under test, not its process.
    assert run_in_process(manifest, out, *FLAGS) == 0
    assert by_id(read_catalog(out), "frames_sha256", "sha256") == baseline


def test_deadline_shorter_than_the_work_exits_4_then_resume_matches(manifest, baseline, tmp_path):
    out = tmp_path / "run"
    ids = [f"stop-{i}" for i in range(ITEMS)]
    # A deadline at the start: no batch may start, whatever the machine's speed (a short
    # positive one raced Ray's start against the render). The gate's arithmetic for
    # deadlines mid-run is tested in tests/unit/test_stopping.py.
    result = run_cli("render", manifest, "--out", out, *FLAGS, "--max-hours", "0")
    assert result.returncode == 4, result.stderr[-3000:]
    assert "pending (exit 4)" in result.stderr
    assert_stopped_with_pending(out, ids, "deadline")
    # No batch could start: Ray was never started (seconds of start-up saved).
    assert json.loads((out / "summary.json").read_text())["startup"] is None

    watch = run_cli("status", out, "--watch", "--interval", "0", "--refreshes", "2")
    assert watch.returncode == 0, watch.stderr
    assert watch.stdout.count("(refreshed ") == 2
    assert "pending" in watch.stdout and "stopped early (deadline)" in watch.stdout

    assert_resume_matches(manifest, out, baseline)
    watch = run_cli("status", out, "--watch", "--interval", "0", "--refreshes", "5")
    assert watch.stdout.count("(refreshed ") == 1  # complete: no need to refresh again
    assert "the run is complete" in watch.stdout


def test_sigint_then_sigterm_once_each_exit_4_and_resume_matches(
    manifest, baseline, last_batch, joined, tmp_path
):
    out = tmp_path / "run"
    ids = [f"stop-{i}" for i in range(ITEMS)]

    # SIGINT once, mid-run: no new batch starts, those in flight finish (the hung last one
    # is abandoned after --stop-grace: it keeps the run from ending first), catalog, exit 4.
    hang_prompt, hung_keys = last_batch
    hang = ("--inject-fault", f"hang:{hang_prompt}", "--stop-grace", "2", *joined)
    log = tmp_path / "sigint.log"
    proc = start_render(manifest, out, *FLAGS, *hang, log=log)
    wait_for(lambda: (out / "_state").exists() and ledger_keys(out), proc, log)
    os.kill(proc.pid, signal.SIGINT)
    assert finish(proc, log) == 4
    counts = assert_stopped_with_pending(out, ids, "SIGINT")
    assert counts["ok"] >= 4

    # SIGTERM once while the last batch hangs: it is abandoned after --stop-grace. The
    # `stall` fault (a hang that first marks the run dir) says when the batch is in flight
    # in *this* run: the other keys may all be in the ledger already from the SIGINT run,
    # and a signal before this driver is under way would only meet Python's default.
    log = tmp_path / "sigterm.log"
    stall = ("--inject-fault", f"stall:{hang_prompt}", "--stop-grace", "2", *joined)
    proc = start_render(manifest, out, *FLAGS, *stall, log=log)
    others = set(read_catalog(out)["key"].to_pylist()) - hung_keys

    def only_the_hung_batch_in_flight() -> bool:
        return others <= ledger_keys(out) and any((out / "_state").glob("stalled-*"))

    wait_for(only_the_hung_batch_in_flight, proc, log)
    os.kill(proc.pid, signal.SIGTERM)
    assert finish(proc, log) == 4
    counts = assert_stopped_with_pending(out, ids, "SIGTERM")
    assert counts["pending"] == len(hung_keys)
    assert "abandoning the batches still in flight" in log.read_text()

    assert_resume_matches(manifest, out, baseline)


def test_second_signal_stops_at_once_and_resume_matches(
    manifest, baseline, last_batch, joined, tmp_path
):
    out = tmp_path / "run"
    hang_prompt, hung_keys = last_batch
    log = tmp_path / "twice.log"
    flags = (*FLAGS, "--inject-fault", f"hang:{hang_prompt}", "--stop-grace", "3600", *joined)
    proc = start_render(manifest, out, *flags, log=log)
    others = {key for key in _all_keys(manifest) if key not in hung_keys}
    wait_for(lambda: (out / "_state").exists() and others <= ledger_keys(out), proc, log)
    os.kill(proc.pid, signal.SIGINT)
    wait_for(lambda: "Send it again to stop at once" in log.read_text(), proc, log)
    os.kill(proc.pid, signal.SIGINT)  # the hung batch would hold the first stop for an hour
    assert finish(proc, log) == 4
    assert "stopped at once" in log.read_text()
    assert not (out / "catalog.parquet").exists()  # at once: not even the catalog
    assert ledger_keys(out) == others  # but every finished row was flushed
    assert_resume_matches(manifest, out, baseline)


def _all_keys(manifest) -> set[str]:
    _, plan = load_and_plan(dataclasses.replace(PLANNED, manifest=str(manifest)))
    return set(plan.items["key"].to_pylist())
