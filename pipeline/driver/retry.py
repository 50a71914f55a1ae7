"""Attempt bookkeeping: which outcomes are final, which batches run again. No Ray here.

An item that failed retriably, or was lost with its actor, runs again in its planned
batch first (its mates as padding, their outputs discarded: its pixels are those of a
clean run); only if that fails too does it run alone, padded with copies of itself, and
its ledger row then says `isolated`. The executor runs every retry alone on its actor, so
a crash there names its batch. A lost batch of several items says nothing about which
item is to blame: an item is quarantined for crashing only after it crashed alone, so
innocent batch-mates of a crashing item are never quarantined.
"""

from __future__ import annotations

from collections import Counter

from pipeline.actor.worker import FATAL, OK, RETRIABLE, outcome
from pipeline.plan.batches import Batch


class RetryBook:
    def __init__(self, max_retries: int):
        self.max_retries = max_retries
        self.attempts: Counter[str] = Counter()

    def _final(self, row: dict, status: str, batch: Batch) -> dict:
        key = row["key"]
        return {
            **row,
            "status": status,
            "attempts": self.attempts[key],
            "batch_id": batch.batch_id,
            "batch_pos": batch.position(key),
            "isolated": batch.isolated,
        }

    def on_results(self, batch: Batch, rows: list[dict]) -> tuple[list[dict], list[Batch]]:
        """Rows the worker returned -> (final ledger rows, batches to run again)."""
        final, again = [], []
        for row in rows:
            self.attempts[row["key"]] += 1
            if row["status"] == OK:
                final.append(self._final(row, "ok", batch))
            elif row["status"] == RETRIABLE and self.attempts[row["key"]] <= self.max_retries:
                again.append(row["key"])
            else:
                assert row["status"] in (FATAL, RETRIABLE)
                final.append(self._final(row, "failed", batch))
        return final, batch.again(again) if again else []

    def on_crash(self, batch: Batch, error: str) -> tuple[list[dict], list[Batch]]:
        """The batch was lost with its process or node: every kept item used an attempt."""
        final, again = [], []
        alone = len(batch.items) == 1  # a crash of a batch of several blames none of them
        for key in batch.keys:
            self.attempts[key] += 1
            if self.attempts[key] <= self.max_retries or not alone:
                again.append(key)
            else:
                message = f"quarantined after {self.attempts[key]} attempts: {error}"
                final.append(self._final(outcome(key, FATAL, message), "failed", batch))
        return final, batch.again(again) if again else []
