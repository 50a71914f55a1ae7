"""The report during a run: rebuilt from the plan rows and the ledger every few minutes,
from the driver's tick. Cheap: one ledger read and one page write per interval."""

from __future__ import annotations

import time
from collections.abc import Callable

import pyarrow as pa

from pipeline.catalog import build_catalog, status_counts
from pipeline.ledger import Ledger
from pipeline.report import write_report
from pipeline.storage import RunDir


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
        self.writes = 0

    def tick(self) -> bool:
        """Rewrite report.html if the interval has passed; True if it did."""
        if self.interval_s <= 0 or time.monotonic() - self._last < self.interval_s:
            return False
        catalog = build_catalog(self.rows, self.ledger.read(), passthrough=())
        write_report(self.run, catalog, self.context(status_counts(catalog)), final=False)
        self._last = time.monotonic()
        self.writes += 1
        return True
