"""Parquet to and from bytes through native Arrow buffers only.

Arrow reads Parquet and CSV on its own IO threads (pre-buffering, readahead). Handed a
Python object - a file it calls back into, or bytes it must release - a pool thread needs
the GIL; when that happens while the interpreter exits soon after an early error (exit 2),
Python ends the thread inside Arrow's C++ and the process dies with "terminate called
without an active exception" (SIGABRT, issue 12). So Arrow only ever sees memory it owns:
we read the bytes ourselves and copy them into an Arrow buffer (a manifest-sized copy,
milliseconds), and no Arrow thread ever touches a Python object.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq


def native_reader(data: bytes) -> pa.BufferReader:
    """An Arrow reader over an Arrow-owned copy of `data` (never a view of Python memory)."""
    buffer = pa.allocate_buffer(len(data))
    pa.FixedSizeBufferWriter(buffer).write(data)
    return pa.BufferReader(buffer)


def read_parquet(data: bytes, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(native_reader(data), columns=columns)


def parquet_bytes(table: pa.Table, compression: str = "zstd") -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression)
    return sink.getvalue().to_pybytes()
