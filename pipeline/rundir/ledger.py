"""The ledger: the checkpoint of a run. Finished items, appended in chunks.

Each flush writes one immutable Parquet part (object stores have no append); parts are
named so that name order is write order, and the newest row of a key wins. A clip is
always on storage before its ledger row, so a crash between the two only re-renders.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.arrow_io import native_reader, parquet_bytes
from pipeline.rundir.layout import LEDGER_PART_PREFIX, RunDir, ledger_part_sequence
from pipeline.schema import LEDGER_SCHEMA

READ_ATTEMPTS = 5  # a reader racing a compaction re-lists the parts


def _read_part(data: bytes, schema: pa.Schema) -> pa.Table:
    """A part's columns of `schema`; a column newer than the part (an older run dir) is null."""
    handle = pq.ParquetFile(native_reader(data))  # Arrow-owned memory only (arrow_io.py)
    present = set(handle.schema_arrow.names)
    table = handle.read(columns=[n for n in schema.names if n in present])
    for name in schema.names:
        if name not in present:
            field = schema.field(name)
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names)


def latest_per_key(table: pa.Table) -> pa.Table:
    """Keep the last row of each key (rows are in write order)."""
    if table.num_rows == 0 or pc.count_distinct(table["key"]).as_py() == table.num_rows:
        return table  # no key twice (the usual case): nothing to drop
    indexed = table.append_column("_order", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    last = indexed.group_by("key", use_threads=False).aggregate([("_order", "max")])["_order_max"]
    # The row positions themselves, in write order (not the positions of the sorted values).
    return table.take(last.take(pc.sort_indices(last)))


class Ledger:
    """The render ledger (LEDGER_SCHEMA in _state/ledger), or with `folder` and `schema`
    another one keyed the same way (a scorer's: _state/scores/<name>)."""

    def __init__(
        self,
        run: RunDir,
        flush_interval_s: float = 30.0,
        folder: str | None = None,
        schema: pa.Schema = LEDGER_SCHEMA,
    ):
        self.run = run
        self.flush_interval_s = flush_interval_s
        self.folder = folder or run.ledger_dir
        self.schema = schema
        self._pending: list[dict] = []
        self._last_flush = time.monotonic()
        self._next_sequence: int | None = None

    def _part_path(self) -> str:
        # A sequence number, not a clock, orders parts: one driver at a time holds the lock.
        if self._next_sequence is None:
            paths = self.part_paths()
            self._next_sequence = ledger_part_sequence(paths[-1]) + 1 if paths else 0
        self._next_sequence += 1
        return self.run.ledger_part(self._next_sequence - 1, self.folder)

    def part_paths(self) -> list[str]:
        names = self.run.list_dir(self.folder)
        return sorted(p for p in names if p.rsplit("/", 1)[-1].startswith(LEDGER_PART_PREFIX))

    def read(self, columns: tuple[str, ...] | None = None) -> pa.Table:
        """Every key's latest result so far. Safe while a driver appends or compacts.

        `columns` (key is always included) reads less: a resume scan needs key and status.
        """
        schema = self.schema
        if columns is not None:
            schema = pa.schema([schema.field(n) for n in schema.names if n in {"key", *columns}])
        for attempt in range(READ_ATTEMPTS):
            try:
                parts = [_read_part(self.run.fs.cat_file(p), schema) for p in self.part_paths()]
                break
            except FileNotFoundError:
                # A compaction removed a listed part; its rows are in the newer part.
                if attempt == READ_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)
        if not parts:
            return schema.empty_table()
        return latest_per_key(pa.concat_tables([p.cast(schema) for p in parts]))

    def append(self, rows: list[dict]) -> bool:
        """Buffer rows; write a part when the flush interval has passed. True if flushed."""
        self._pending.extend(rows)
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        table = pa.Table.from_pylist(self._pending, schema=self.schema)
        self.run.write(self._part_path(), parquet_bytes(table))
        self._pending = []

    def compact(self) -> pa.Table:
        """Fold all parts into one (newest name, written before the old are removed)."""
        paths = self.part_paths()
        table = self.read()
        if len(paths) > 1:
            self.run.write(self._part_path(), parquet_bytes(table))
            for path in paths:
                self.run.fs.rm_file(path)
        return table
