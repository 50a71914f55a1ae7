"""The report during a run: rebuilt from the plan rows and the ledger every few minutes,
from the driver's tick. It runs in a background thread (a 100,000-row page takes about a
second to build), at most one at a time, and close() waits for it so it can never
overwrite the final report."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pyarrow as pa

from pipeline.report import write_report
from pipeline.rundir.catalog import build_catalog, status_counts
from pipeline.rundir.layout import RunDir
from pipeline.rundir.ledger import Ledger

log = logging.getLogger(__name__)


class LiveReport:
    def __init__(
        self,
        run: RunDir,
        rows: pa.Table,
        ledger: Ledger,
        context: Callable[[dict], dict],
        interval_s: float,
    ):
        self.run, self.rows, self.ledger = run, rows, ledger
        self.context = context  # counts -> summary-like dict
        self.interval_s = interval_s
        self._last = time.monotonic()
        self._thread: threading.Thread | None = None
        self.writes = 0

    def tick(self) -> bool:
        """Start a rewrite if the interval has passed and none is running; True if started."""
        busy = self._thread is not None and self._thread.is_alive()
        if self.interval_s <= 0 or busy or time.monotonic() - self._last < self.interval_s:
            return False
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._write, name="live-report", daemon=True)
        self._thread.start()
        return True

    def _write(self) -> None:
        try:
            catalog = build_catalog(self.rows, self.ledger.read(), passthrough=())
            write_report(self.run, catalog, self.context(status_counts(catalog)), final=False)
            self.writes += 1
        except Exception:  # noqa: BLE001 - a report is never worth stopping a run
            log.warning("live report.html not rewritten", exc_info=True)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
