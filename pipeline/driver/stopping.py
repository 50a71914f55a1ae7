"""Stopping a run early and cleanly: a deadline (--stop-at / --max-hours) or a signal.

The dispatcher asks `StopControl.admit` before it starts a batch. Once a stop is due no
batch starts; batches in flight finish (a deadline), or finish within --stop-grace seconds
after SIGINT/SIGTERM and are abandoned after that (their items stay pending: the ledger
never saw them, so a resume renders them, exactly as if they had never started). A second
signal stops at once (`StoppedNow`): the ledger rows already received are flushed, nothing
else is written. Either way the run exits 4, "stopped with items pending".

A batch "could not finish in time" when now + the seconds a batch takes > the deadline.
Seconds per batch: the longest dispatch-to-result time of the last few batches (it
includes the wait behind the batch already queued on that actor). Before the first result
of this run: from the run dir's earlier results if it has any, else one batch per actor
at a time until the first one is measured (at most one batch per actor can then overrun).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import deque
from datetime import datetime, timedelta

from pipeline.errors import ConfigError

MEASURED_BATCHES = 8  # the estimate follows the latest batches (a warm-up batch ages out)


class StoppedNow(KeyboardInterrupt):
    """A second SIGINT/SIGTERM: stop at once. A KeyboardInterrupt, so no `except Exception`
    on the way swallows it; the CLI maps it to exit code 4. Ray turns any
    KeyboardInterrupt raised inside `ray.wait`/`ray.get` into a plain new one (measured:
    exit 130), so the job re-raises it as this with `StopControl.reraise`."""


def parse_stop_at(text: str, now: datetime | None = None) -> datetime:
    """`HH:MM[:SS]` (local): the next such time, so 06:30 given at 23:00 means tomorrow;
    or an ISO date-time (naive = local time). Returns an aware datetime."""
    now = (now or datetime.now()).astimezone()
    try:
        if len(text) <= 8 and ":" in text and "T" not in text and "-" not in text:
            clock = datetime.strptime(text, "%H:%M:%S" if text.count(":") == 2 else "%H:%M")
            at = now.replace(hour=clock.hour, minute=clock.minute, second=clock.second)
            at = at.replace(microsecond=0)
            return at if at > now else at + timedelta(days=1)
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--stop-at {text!r}: expected HH:MM (local, the next one) or an ISO date-time "
            "such as 2026-12-02T09:00 or 2026-12-02T08:00:00+00:00"
        ) from None
    return at.astimezone() if at.tzinfo is None else at


def deadline_from(stop_at: str | None, max_hours: float | None, started: float) -> float | None:
    """The earlier of --stop-at and started + --max-hours, as epoch seconds (None: none)."""
    candidates = []
    if stop_at:
        candidates.append(parse_stop_at(stop_at).timestamp())
    if max_hours is not None:
        candidates.append(started + max_hours * 3600)
    return min(candidates) if candidates else None


def prior_batch_seconds(finished, batch_size: int, batches_in_flight: int) -> float | None:
    """A batch's dispatch-to-result time from earlier runs of this run dir: the mean
    per-item render + encode time of its ok rows, for the batches queued on one actor."""
    import pyarrow.compute as pc

    ok = finished.filter(pc.equal(finished["status"], "ok"))
    if not ok.num_rows:
        return None
    per_item = pc.mean(pc.add(pc.fill_null(ok["render_s"], 0), pc.fill_null(ok["encode_s"], 0)))
    return per_item.as_py() * batch_size * max(1, batches_in_flight)


def items_before(seconds_left: float, seconds_per_item: float, actors: int, pending: int) -> int:
    """How many pending items fit in `seconds_left` with `actors` rendering side by side."""
    if seconds_left <= 0:
        return 0
    if not seconds_per_item:
        return pending
    return min(pending, int(seconds_left * max(1, actors) / seconds_per_item))


def describe_fit(deadline: float, seconds_per_item, actors: int, pending: int) -> str:
    """`plan`'s line: what fits before the deadline at the measured or given rate."""
    at = datetime.fromtimestamp(deadline).astimezone().isoformat(timespec="minutes")
    left = deadline - time.time()
    if left <= 0:
        return f"deadline {at}: already past; a render would start nothing (exit 4)"
    if not seconds_per_item:
        return (
            f"deadline {at} (in {left / 3600:.2f} h): no rate known; give --seconds-per-item, "
            "or plan again after a first run with --out"
        )
    fit = items_before(left, seconds_per_item, actors, pending)
    return (
        f"deadline {at} (in {left / 3600:.2f} h): about {fit} of {pending} pending items fit "
        f"at {seconds_per_item:.3g} s/item with --actors {actors}"
        + ("" if fit >= pending else f"; {pending - fit} would stay pending (exit 4)")
    )


class StopControl:
    """When the dispatcher may start a batch, and whether to stop; the signal handlers."""

    def __init__(self, deadline: float | None = None, grace_s: float = 120.0, prior_batch_s=None):
        self.deadline = deadline
        self.grace_s = grace_s
        self.reason: str | None = None  # "deadline" | "SIGINT" | "SIGTERM"
        self.prior = prior_batch_s  # seconds per batch from earlier runs, if any
        self._latencies: deque[float] = deque(maxlen=MEASURED_BATCHES)
        self._dispatched: dict[int, float] = {}
        self._signalled_at: float | None = None
        self._abandoned = False
        self.stopped_now: str | None = None  # set by a second signal
        self.armed = False  # until start-up is over (pipeline/driver/startup.py)
        self._previous_handlers: dict = {}

    # --- the dispatcher's gate ----------------------------------------------------------

    @property
    def stopping(self) -> bool:
        if self.reason is None and self.deadline is not None and time.time() >= self.deadline:
            self.reason = "deadline"
        return self.reason is not None

    def batch_seconds(self) -> float | None:
        return max(self._latencies) if self._latencies else self.prior

    def admit(self, actor_load: int) -> bool:
        """May a batch start now on an actor that already runs `actor_load` batches?"""
        if self.stopping:
            return False
        if self.deadline is None:
            return True
        estimate = self.batch_seconds()
        if estimate is None:
            return actor_load == 0  # unmeasured: one at a time until the first result
        if time.time() + estimate > self.deadline:
            self.reason = "deadline"
            return False
        return True

    def dispatched(self, batch) -> None:
        self._dispatched[id(batch)] = time.monotonic()

    def finished(self, batch) -> None:
        started = self._dispatched.pop(id(batch), None)
        if started is not None:
            self._latencies.append(time.monotonic() - started)

    def abandon_due(self) -> bool:
        """After a signal, in-flight batches get `grace_s` to finish, then are abandoned."""
        due = (
            self._signalled_at is not None and time.monotonic() - self._signalled_at > self.grace_s
        )
        if due and not self._abandoned:
            self._abandoned = True
            print(
                f"--stop-grace {self.grace_s:g}s is over: abandoning the batches still in "
                "flight (their items stay pending)",
                file=sys.stderr,
                flush=True,
            )
        return due

    # --- signals ------------------------------------------------------------------------

    def install(self) -> None:
        """Call again once Ray is up: ray.init installs a C++ SIGTERM handler (measured: it
        logs "SIGTERM received" and aborts the driver, exit -6) over a Python one."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread; its caller handles them
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(signum, self._on_signal)
            self._previous_handlers.setdefault(signum, previous)  # again: keep the first

    def restore(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def arm(self) -> None:
        """Start-up is over: from now on a signal stops the run cleanly (exit 4)."""
        self.armed = True

    def _on_signal(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if not self.armed:  # during start-up: nothing to finish, interrupt as Ctrl-C does
            raise KeyboardInterrupt(f"{name} during start-up")
        if self._signalled_at is None:
            self._signalled_at = time.monotonic()
            self.reason = name
            print(
                f"\n{name}: stopping; no new batches, those in flight get up to "
                f"{self.grace_s:g}s to finish. Send it again to stop at once.",
                file=sys.stderr,
                flush=True,
            )
            return
        self.restore()  # a third signal acts as it would without promptreel
        self.stopped_now = f"second {name}: stopped at once"
        raise StoppedNow(self.stopped_now)

    def reraise(self, exc: KeyboardInterrupt):
        """Raise `exc` again, as StoppedNow if it came from a second signal."""
        if self.stopped_now and not isinstance(exc, StoppedNow):
            raise StoppedNow(self.stopped_now) from None
        raise exc


def add_stop_args(parser) -> None:
    """--stop-at, --max-hours, --stop-grace (render and plan)."""
    group = parser.add_argument_group("deadline and stopping (never changes pixels)")
    group.add_argument(
        "--stop-at",
        default=None,
        metavar="TIME",
        help="start no batch that could not finish by TIME: HH:MM local (the next one: "
        "06:30 given at 23:00 is tomorrow) or an ISO date-time; then exit 4, resumable",
    )
    group.add_argument(
        "--max-hours",
        type=_hours,
        default=None,
        metavar="H",
        help="like --stop-at, H hours after the start (fractions allowed)",
    )
    group.add_argument(
        "--stop-grace",
        type=_hours_free_seconds,
        default=120.0,
        metavar="S",
        help="after SIGINT/SIGTERM, in-flight batches get S seconds to finish before they "
        "are abandoned (left pending); a second signal stops at once (default: %(default)s)",
    )


def _hours(text: str) -> float:
    import argparse

    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of hours >= 0, got {text}")
    return value


_hours_free_seconds = _hours  # the same check, for seconds
