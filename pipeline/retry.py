"""Attempt bookkeeping: which outcomes are final, which batches run again. No Ray here.

A batch that kills its actor is split into single items, each padded back to the batch
size with copies of itself (so its pixels do not change); an item that keeps failing
alone is quarantined as `failed` after `max_retries` more attempts. The executor runs
each retried batch alone on its actor, so a crash charges an attempt to its culprit
only, never to an innocent batch that shared the actor.
"""

from __future__ import annotations

from collections import Counter

from pipeline.plan import Batch
from pipeline.worker import FATAL, OK, RETRIABLE, outcome


class RetryBook:
    def __init__(self, max_retries: int):
        self.max_retries = max_retries
        self.attempts: Counter[str] = Counter()

    def _final(self, row: dict, status: str) -> dict:
        return {**row, "status": status, "attempts": self.attempts[row["key"]]}

    def on_results(self, batch: Batch, rows: list[dict]) -> tuple[list[dict], list[Batch]]:
        """Rows the worker returned -> (final ledger rows, batches to run again)."""
        final, again = [], []
        by_key = {item.key: item for item in batch.items}
        for row in rows:
            self.attempts[row["key"]] += 1
            if row["status"] == OK:
                final.append(self._final(row, "ok"))
            elif row["status"] == RETRIABLE and self.attempts[row["key"]] <= self.max_retries:
                again.append(Batch((by_key[row["key"]],), batch.size))
            else:
                assert row["status"] in (FATAL, RETRIABLE)
                final.append(self._final(row, "failed"))
        return final, again

    def on_crash(self, batch: Batch, error: str) -> tuple[list[dict], list[Batch]]:
        """The batch was lost with its process or node: every item in it used an attempt."""
        final, again = [], []
        for item in batch.items:
            self.attempts[item.key] += 1
            if self.attempts[item.key] <= self.max_retries:
                again.append(Batch((item,), batch.size))
            else:
                message = f"quarantined after {self.attempts[item.key]} attempts: {error}"
                final.append(self._final(outcome(item.key, FATAL, message), "failed"))
        return final, again
