"""Deadline arithmetic and the dispatcher's gate (pipeline/driver/stopping.py), without Ray; and
`plan` showing what fits before a deadline."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.cli import main
from pipeline.driver.stopping import StopControl, deadline_from, items_before, parse_stop_at
from pipeline.errors import ConfigError
from tests.conftest import prompt_rows, write_manifest


def test_stop_at_clock_time_is_the_next_one_and_iso_times_are_kept():
    evening = datetime(2026, 12, 1, 23, 0).astimezone()
    assert parse_stop_at("06:30", evening) == (evening + timedelta(days=1)).replace(
        hour=6, minute=30
    )
    assert parse_stop_at("23:30", evening) == evening.replace(minute=30)
    assert parse_stop_at("23:00", evening) == evening + timedelta(days=1)  # now: the next one
    assert parse_stop_at("2026-12-02T09:00", evening) == datetime(2026, 12, 2, 9, 0).astimezone()
    utc = parse_stop_at("2026-12-02T08:00:00+00:00", evening)
    assert utc == datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    for bad in ("9am", "25:00", "tomorrow", "2026-13-01T00:00"):
        with pytest.raises(ConfigError, match="--stop-at"):
            parse_stop_at(bad, evening)


def test_deadline_is_the_earlier_of_stop_at_and_max_hours():
    started = time.time()
    assert deadline_from(None, None, started) is None
    assert deadline_from(None, 2.0, started) == started + 7200
    in_ten_minutes = datetime.fromtimestamp(started + 600).strftime("%Y-%m-%dT%H:%M:%S")
    at = deadline_from(in_ten_minutes, 2.0, started)
    assert started + 598 < at < started + 601
    assert deadline_from(in_ten_minutes, 0.0, started) == started


def test_gate_without_deadline_admits_everything():
    gate = StopControl()
    assert all(gate.admit(load) for load in range(4))
    assert not gate.stopping


def test_gate_before_any_measurement_runs_one_batch_per_actor():
    gate = StopControl(deadline=time.time() + 3600)
    assert gate.admit(0)
    assert not gate.admit(1)  # unmeasured: the second slot waits for the first result
    assert not gate.stopping


def test_gate_with_a_prior_estimate_from_earlier_runs_uses_it():
    gate = StopControl(deadline=time.time() + 3600, prior_batch_s=7200)
    assert not gate.admit(0)
    assert gate.reason == "deadline"


def test_gate_stops_once_a_measured_batch_could_not_finish_in_time():
    gate = StopControl(deadline=time.time() + 3600)
    batch = object()
    gate.dispatched(batch)
    gate.finished(batch)
    assert gate.batch_seconds() is not None and gate.batch_seconds() < 60
    assert gate.admit(1)  # measured and short: the second slot may start too
    gate._latencies.append(4000.0)  # a batch now takes longer than the time left
    assert not gate.admit(0)
    assert gate.stopping and gate.reason == "deadline"
    assert not gate.abandon_due()  # a deadline lets in-flight batches finish


def test_gate_past_deadline_is_stopping_and_admits_nothing():
    gate = StopControl(deadline=time.time() - 1)
    assert gate.stopping and gate.reason == "deadline"
    assert not gate.admit(0)


def test_items_before_deadline():
    assert items_before(3600, 10, 2, 10_000) == 720
    assert items_before(3600, 10, 2, 100) == 100
    assert items_before(-5, 10, 2, 100) == 0
    assert items_before(3600, 0, 2, 100) == 100


def test_plan_shows_what_fits_before_the_deadline(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(8))
    code = main(
        ["plan", str(manifest), "--seconds-per-item", "10", "--max-hours", "0.01", "--actors", "1"]
    )
    assert code == 0
    out = capsys.readouterr().out
    match = re.search(r"about (\d+) of 8 pending items fit at 10 s/item with --actors 1", out)
    assert match, out
    assert int(match.group(1)) <= 3  # 36 s at 10 s/item, one actor
    assert "would stay pending (exit 4)" in out
    assert main(["plan", str(manifest), "--stop-at", "bad"]) == 2
