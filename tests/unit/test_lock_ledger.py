"""Unit tests without Ray: the ledger (checkpoint), the driver lock, the retry book."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from pipeline.actor.worker import FATAL, OK, RETRIABLE, outcome
from pipeline.arrow_io import parquet_bytes
from pipeline.driver.retry import RetryBook
from pipeline.errors import ConfigError
from pipeline.plan.batches import Batch, Item
from pipeline.rundir.layout import RunDir
from pipeline.rundir.ledger import Ledger, latest_per_key
from pipeline.rundir.lock import DriverLock
from pipeline.schema import LEDGER_SCHEMA


def _row(key: str, status: str = "ok", attempts: int = 1) -> dict:
    return {**outcome(key, status), "status": status, "attempts": attempts}


def _item(key: str) -> Item:
    return Item(key, f"prompt {key}", "", 1, "tiny", 64, 64, 9, 8.0, 4, 1.0)


@pytest.fixture
def run(tmp_path) -> RunDir:
    return RunDir(str(tmp_path / "run"))


# ledger


def test_latest_per_key_keeps_the_newest_row_of_each_key():
    table = pa.table(
        {"key": ["a", "a", "b", "c", "b"], "status": ["failed", "ok", "ok", "ok", "failed"]}
    )
    got = latest_per_key(table).to_pylist()
    assert sorted((r["key"], r["status"]) for r in got) == [
        ("a", "ok"),
        ("b", "failed"),
        ("c", "ok"),
    ]


def test_ledger_flushes_in_chunks_by_interval(run):
    ledger = Ledger(run, flush_interval_s=3600)
    assert not ledger.append([_row("a"), _row("b")])
    assert ledger.part_paths() == []  # buffered, not one file per item
    ledger.flush()
    assert len(ledger.part_paths()) == 1
    eager = Ledger(run, flush_interval_s=0)
    assert eager.append([_row("c")])
    assert len(eager.part_paths()) == 2
    assert sorted(Ledger(run).read()["key"].to_pylist()) == ["a", "b", "c"]


def test_newer_result_wins_across_parts_and_compaction(run):
    ledger = Ledger(run, flush_interval_s=0)
    ledger.append([_row("a", "failed", 3), _row("b")])
    ledger.append([_row("a", "ok", 1)])
    assert {r["key"]: r["status"] for r in ledger.read().to_pylist()} == {"a": "ok", "b": "ok"}
    # A leftover temp file of a killed write is ignored by the reader and removed by the
    # run dir's one sweep (RunDir.sweep, at the end of the next run).
    stray = os.path.join(run.ledger_dir, ".tmp-deadbeef")
    with open(stray, "wb") as handle:
        handle.write(b"partial")
    fresh = Ledger(run)
    table = fresh.compact()
    assert len(fresh.part_paths()) == 1 and os.path.exists(stray)
    assert run.sweep(table["key"]) == 1 and not os.path.exists(stray)
    assert {r["key"]: r["status"] for r in table.to_pylist()} == {"a": "ok", "b": "ok"}
    fresh.append([_row("c")])
    fresh.flush()
    names = [p.rsplit("/", 1)[-1] for p in fresh.part_paths()]
    assert names == sorted(names) and len(names) == 2  # name order is write order
    assert sorted(fresh.read()["key"].to_pylist()) == ["a", "b", "c"]


def test_compaction_killed_midway_loses_nothing(run):
    """Merged part written, old parts not yet removed: rows appear twice, read dedups."""
    ledger = Ledger(run, flush_interval_s=0)
    ledger.append([_row("a")])
    ledger.append([_row("b")])
    merged = ledger.read()
    run.write(ledger._part_path(), parquet_bytes(merged))
    assert Ledger(run).read().num_rows == 2
    assert Ledger(run).compact().num_rows == 2


def test_empty_ledger_reads_empty(run):
    assert Ledger(run).read().schema == LEDGER_SCHEMA
    assert Ledger(run).compact().num_rows == 0


# lock


def test_second_driver_refused_while_holder_lives(run):
    first = DriverLock(run)
    first.acquire()
    with pytest.raises(ConfigError, match="another driver is running"):
        DriverLock(run).acquire()
    first.release()
    DriverLock(run).acquire()


def test_lock_of_dead_process_is_taken_over_at_once(run):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = __import__("psutil").Process(child.pid).create_time()
    child.wait()
    record = {
        "token": "x",
        "host": socket.gethostname(),
        "pid": child.pid,
        "pid_started": started,
        "ttl_s": 3600,
        "heartbeat": time.time(),
    }
    run.write(run.lock, json.dumps(record).encode())
    lock = DriverLock(run)
    assert lock.is_stale(lock.holder())
    lock.acquire()
    assert lock.holder()["token"] == lock.token


def test_live_holder_on_this_host_is_not_stale_even_with_an_old_heartbeat(run):
    first = DriverLock(run, ttl_s=1)
    first.acquire()
    record = {**json.loads(run.read_bytes(run.lock)), "heartbeat": time.time() - 3600}
    run.write(run.lock, json.dumps(record).encode())
    with pytest.raises(ConfigError, match="another driver"):
        DriverLock(run).acquire()


def test_remote_holder_is_judged_by_heartbeat_age(run):
    record = {"token": "x", "host": "elsewhere", "pid": 1, "pid_started": 1.0, "ttl_s": 60}
    lock = DriverLock(run)
    assert not lock.is_stale({**record, "heartbeat": time.time() - 10})
    assert lock.is_stale({**record, "heartbeat": time.time() - 120})
    assert lock.is_stale({})  # torn file


# retry book


def test_max_retries_defaults_to_two():
    from pipeline.cli.parser import build_parser

    args = build_parser().parse_args(["render", "m.parquet", "--out", "run"])
    assert args.max_retries == 2 and not args.retry_failed


def test_retriable_results_retry_in_their_planned_batch_then_alone_then_fail():
    book = RetryBook(max_retries=2)
    batch = Batch((_item("a"), _item("b"), _item("c")), 4)
    final, again = book.on_results(
        batch, [outcome("a", OK), outcome("b", RETRIABLE, "oom"), outcome("c", OK)]
    )
    assert [(r["key"], r["status"], r["attempts"]) for r in final] == [
        ("a", "ok", 1),
        ("c", "ok", 1),
    ]
    assert [r["batch_pos"] for r in final] == [0, 2] and not any(r["isolated"] for r in final)
    # First retry: the whole planned batch again, only b kept (a and c are padding).
    (retry,) = again
    assert retry.items == batch.items and retry.keys == ("b",) and retry.batch_id == batch.batch_id
    final, again = book.on_results(retry, [outcome("b", RETRIABLE, "oom")])
    # Second retry: b alone, padded with copies of itself; still recorded in its batch.
    (alone,) = again
    assert alone.items == (_item("b"),) and alone.padded() == (_item("b"),) * 4
    final, again = book.on_results(alone, [outcome("b", OK)])
    assert again == [] and [(r["status"], r["attempts"]) for r in final] == [("ok", 3)]
    assert final[0]["batch_id"] == batch.batch_id and final[0]["batch_pos"] == 1
    assert final[0]["isolated"] is True


def test_retriable_results_fail_after_max_retries():
    book = RetryBook(max_retries=1)
    batch = Batch((_item("a"), _item("b")), 4)
    final, again = book.on_results(batch, [outcome("a", OK), outcome("b", RETRIABLE, "oom")])
    assert [b.keys for b in again] == [("b",)] and again[0].size == 4
    final, again = book.on_results(again[0], [outcome("b", RETRIABLE, "oom")])
    assert [(r["key"], r["status"], r["attempts"]) for r in final] == [("b", "failed", 2)]
    assert again == [] and final[0]["isolated"] is False  # it never left its planned batch


def test_fatal_results_fail_at_once():
    book = RetryBook(max_retries=2)
    final, again = book.on_results(Batch((_item("a"),), 4), [outcome("a", FATAL, "nan")])
    assert [(r["status"], r["attempts"], r["error"]) for r in final] == [("failed", 1, "nan")]
    assert again == []


def test_crash_retries_planned_batch_then_isolates_and_quarantines_only_the_culprit():
    book = RetryBook(max_retries=1)
    batch = Batch((_item("a"), _item("b")), 4)
    final, again = book.on_crash(batch, "ActorDiedError")  # lost with its actor
    assert final == [] and [(b.items, b.keys) for b in again] == [(batch.items, ("a", "b"))]
    # Attempts are used up, but a crash of several items blames none of them: alone next.
    final, again = book.on_crash(again[0], "ActorDiedError")
    assert final == [] and [b.keys for b in again] == [("a",), ("b",)]
    assert all(b.isolated and b.batch_id == batch.batch_id for b in again)
    final_b, _ = book.on_results(again[1], [outcome("b", OK)])  # b was innocent
    assert final_b[0]["status"] == "ok" and final_b[0]["isolated"] is True
    final, again = book.on_crash(again[0], "ActorDiedError")  # a crashes alone: the culprit
    assert again == [] and final[0]["status"] == "failed" and final[0]["attempts"] == 3
    assert "quarantined after 3 attempts" in final[0]["error"] and final[0]["batch_pos"] == 0


def test_lost_batch_succeeds_in_its_planned_batch_without_isolation():
    book = RetryBook(max_retries=2)
    batch = Batch((_item("a"), _item("b")), 4)
    _, again = book.on_crash(batch, "NodeDiedError")
    final, again = book.on_results(again[0], [outcome("a", OK), outcome("b", OK)])
    assert again == [] and [(r["attempts"], r["isolated"]) for r in final] == [(2, False)] * 2


def test_lone_item_crash_quarantines_after_max_retries():
    book = RetryBook(max_retries=1)
    batch = Batch((_item("a"),), 4)  # its planned batch is itself: a retry is the same call
    _, again = book.on_crash(batch, "ActorDiedError")
    assert again == [batch]
    final, again = book.on_crash(again[0], "ActorDiedError")
    assert again == [] and "quarantined after 2 attempts" in final[0]["error"]
    assert final[0]["isolated"] is False


def test_ledger_reads_parts_written_before_newer_columns(tmp_path):
    """A run dir from an older promptreel: its parts lack the newer columns (QC, batch)."""
    run = RunDir(str(tmp_path / "run"))
    old = pa.table({"key": ["k1"], "status": ["ok"], "attempts": [1]})
    run.write(f"{run.ledger_dir}/part-000000000001-0ld0ld00.parquet", parquet_bytes(old))
    table = Ledger(run).read()
    assert table.schema.names == LEDGER_SCHEMA.names
    assert table["key"].to_pylist() == ["k1"] and table["status"].to_pylist() == ["ok"]
    newer = [n for n in LEDGER_SCHEMA.names if n not in old.column_names]
    assert newer and all(table[n].null_count == 1 for n in newer)
