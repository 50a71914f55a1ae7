"""Failures are data (issue 4, point 5): classified, retried, quarantined, re-tried later.

Real faults from the test-only injector (pipeline/actor/faults.py): `crash` ends the render
actor's process (os._exit) every time it meets its prompt; `nan` and `encode` are fatal
on first sight; `storage` is retriable and keeps failing. The run renders in-process on
the session's local Ray; nothing is mocked.
"""

from __future__ import annotations

import json

import pyarrow.compute as pc

from tests.conftest import prompt_rows, read_catalog, write_manifest
from tests.support.runs import assert_exactly_once, by_id, clip_files, run_in_process

# One retry (the default is 2; see test_lock_ledger.py): every crash costs an actor start.
# The null model: failure handling is under test, and its actors start without torch.
FLAGS = (
    "--model",
    "null",
    "--actors",
    "1",
    "--max-retries",
    "1",
    "--batch-size",
    "4",
    "--flush-interval",
    "0.2",
    "--no-progress",
)


def test_crashing_row_is_quarantined_others_finish_then_retry_failed(ray_local, tmp_path):
    rows = prompt_rows(8, prefix="fault", height=64, width=64)
    manifest = write_manifest(tmp_path / "prompts.parquet", rows)
    prompt = {row["id"]: row["prompt"] for row in rows}
    faults = {"fault-5": "crash", "fault-1": "nan", "fault-2": "encode", "fault-6": "storage"}
    out = tmp_path / "run"
    inject = [f"--inject-fault={kind}:{prompt[i]}" for i, kind in faults.items()]

    assert run_in_process(manifest, out, *FLAGS, *inject) == 3
    catalog = read_catalog(out)
    status = by_id(catalog, "status", "attempts", "error", "isolated", "batch_id")
    assert {i for i, (s, *_) in status.items() if s == "failed"} == set(faults)
    # The row that kills its actor crashed in its planned batch, then in its planned batch
    # alone on an actor, then alone: only a lone crash blames it (3 > 1 + --max-retries 1).
    assert status["fault-5"][1] == 3 and "quarantined after 3 attempts" in status["fault-5"][2]
    assert "ActorDiedError" in status["fault-5"][2]
    # A retriable storage error retries in its planned batch, then fails: 2 attempts (3
    # when its batch was the crashing row's: crash, crash, then its own error alone).
    assert status["fault-6"][1] in (2, 3) and "storage error" in status["fault-6"][2]
    # Fatal ones fail at their first own attempt (later if lost with the crashing actor).
    assert status["fault-1"][1] in (1, 2, 3) and "NaN" in status["fault-1"][2]
    assert status["fault-2"][1] in (1, 2, 3) and "EncodeError" in status["fault-2"][2]
    # Innocent rows finish; only the crashing row's planned mates had to run alone, and
    # their catalog rows say so.
    mates = {i for i, row in status.items() if row[4] == status["fault-5"][4]} - {"fault-5"}
    for i in set(status) - set(faults):
        assert status[i][0] == "ok" and status[i][1] in (1, 2, 3), (i, status[i])
        assert status[i][3] is (i in mates), (i, status[i])
    assert_exactly_once(out, [r["id"] for r in rows])
    ok_clips = clip_files(out)

    # A plain resume keeps failed rows failed and renders nothing.
    assert run_in_process(manifest, out, *FLAGS) == 3
    assert json.loads((out / "summary.json").read_text())["rendered_this_run"] == 0

    # --retry-failed, faults gone: only the four failed rows render, and turn ok.
    assert run_in_process(manifest, out, *FLAGS, "--retry-failed") == 0
    assert json.loads((out / "summary.json").read_text())["rendered_this_run"] == 4
    catalog = read_catalog(out)
    assert pc.all(pc.equal(catalog["status"], "ok")).as_py()
    assert clip_files(out).items() >= ok_clips.items()  # earlier clips untouched
    assert_exactly_once(out, [r["id"] for r in rows])


def test_hung_batch_is_killed_after_batch_timeout_and_the_run_finishes(ray_local, tmp_path):
    rows = prompt_rows(3, prefix="hang")
    manifest = write_manifest(tmp_path / "prompts.parquet", rows)
    out = tmp_path / "run"
    # One retry: killing the hung actor also loses the batch queued behind it, which then
    # succeeds alone; the hung row hangs again alone and is quarantined.
    # The null model: a hung batch, a killed actor and its replacement are under test.
    flags = ("--model", "null", "--actors", "1", "--max-retries", "1", "--batch-size", "1")
    flags += ("--no-progress",)
    hang = f"--inject-fault=hang:{rows[1]['prompt']}"
    assert run_in_process(manifest, out, *flags, "--batch-timeout", "8", hang) == 3
    status = by_id(read_catalog(out), "status", "attempts", "error")
    assert status["hang-1"][0] == "failed" and "quarantined after 2 attempts" in status["hang-1"][2]
    assert status["hang-0"][0] == status["hang-2"][0] == "ok"
    assert_exactly_once(out, [r["id"] for r in rows])
