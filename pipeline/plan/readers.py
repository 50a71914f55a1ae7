"""Reading manifests: Parquet, CSV and JSONL from a path or any fsspec URL, into Arrow.

Text columns (ids, prompts, seeds) are read as text from CSV and JSONL, so ids like "007"
and seeds above 2**63 stay exact; validation (manifest.py) parses them.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import stat
import threading

import fsspec
import fsspec.compression
import fsspec.utils
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.arrow_io import native_reader
from pipeline.errors import ConfigError, ManifestError, RowProblem, show_value
from pipeline.schema import TEXT_COLUMNS

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
FORMATS |= {".jsonl": "jsonl", ".ndjson": "jsonl"}
# Compressions fsspec can open here (gz, bz2, xz, ...; zst with the zstandard package).
COMPRESSION_SUFFIXES = tuple("." + suffix for suffix in fsspec.utils.compressions)
_CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)  # prompts may span lines
_CSV_CONVERT = pacsv.ConvertOptions(column_types=dict.fromkeys(TEXT_COLUMNS, pa.string()))


def manifest_format(url: str) -> str:
    """'parquet' | 'csv' | 'jsonl' from the file name, ignoring a compression suffix."""
    for part in url.split("::"):
        name = part.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
        while name.endswith(COMPRESSION_SUFFIXES):
            name = name.rsplit(".", 1)[0]
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        if suffix in FORMATS:
            return FORMATS[suffix]
    raise ConfigError(
        f"manifest {url!r}: unsupported file type; supported: {', '.join(FORMATS)} "
        f"(optionally compressed: {', '.join(COMPRESSION_SUFFIXES)})"
    )


def read_manifest(url: str, storage_options: dict | None = None) -> pa.Table:
    """Read a manifest from a local path or any fsspec URL into an Arrow table.

    The bytes are read here, then parsed from memory: Arrow's threads never call back into
    a Python file object (see pipeline/arrow_io.py).
    """
    fmt = manifest_format(url)
    try:
        with _open(url, storage_options) as handle:
            if fmt == "parquet":
                return pq.read_table(native_reader(handle.read()))
            if fmt == "csv":
                return pacsv.read_csv(
                    native_reader(handle.read()),
                    parse_options=_CSV_PARSE,
                    convert_options=_CSV_CONVERT,
                )
            return _read_jsonl(io.TextIOWrapper(handle, encoding="utf-8-sig"))
    except ManifestError:
        raise
    except FileNotFoundError as exc:
        raise ConfigError(f"manifest not found: {url}") from exc
    except (OSError, ValueError, EOFError, pa.ArrowException) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot read manifest {url} as {fmt}: {detail}") from exc


def _open(url: str, storage_options: dict | None):
    """The manifest as a binary file, decompressed by its suffix. A local file that is not
    a regular file (a FIFO, `<(zcat m.csv.gz)`) cannot seek, as fsspec's local opener
    does: it is read as a stream instead (see _read_stream)."""
    local = fsspec.utils.stringify_path(url)
    if "://" not in local and "::" not in local and os.path.exists(local):
        if not stat.S_ISREG(os.stat(local).st_mode):
            codec = fsspec.compression.compr[fsspec.utils.infer_compression(local)]
            return codec(io.BytesIO(_read_stream(local)), mode="rb")
    return fsspec.open(url, "rb", compression="infer", **(storage_options or {}))


def _read_stream(path: str) -> bytes:
    """Every byte of a pipe, until its writer closes it, with Ctrl-C honoured throughout.

    The kernel gives a process's SIGINT to any of its threads (Arrow's, jemalloc's); Python
    runs the handler in the main thread, but only once that thread leaves the system call
    it is blocked in, and a blocking read() of a pipe that receives nothing never does.
    So the main thread waits in select() on the pipe and on Python's signal wakeup fd,
    which every signal writes to, whichever thread took it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a blocking open waits for a writer
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.set_wakeup_fd(wake_w) if main else -1
    chunks = []
    try:
        while True:
            # Back in Python at least every 0.2 s, so a signal whose wakeup byte was missed
            # (it came before set_wakeup_fd) is still handled; the wakeup fd makes it prompt.
            ready, _, _ = select.select([fd, wake_r], [], [], 0.2)
            if wake_r in ready:
                os.read(wake_r, 512)
            if fd in ready:
                try:
                    chunk = os.read(fd, 1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
    finally:
        if main:
            signal.set_wakeup_fd(previous)
        for handle in (fd, wake_r, wake_w):
            os.close(handle)


def _read_jsonl(lines) -> pa.Table:
    """One JSON object per line; Python's json keeps integers of any size exact."""
    columns: dict[str, list] = {}
    problems: list[RowProblem] = []
    count = 0
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
            bad = (
                not isinstance(record, dict) and f"expected a JSON object, got {show_value(record)}"
            ) or _lone_surrogate(record)
        except json.JSONDecodeError as exc:
            bad = f"invalid JSON ({exc.msg} at column {exc.colno}): {show_value(line)}"
        if bad:
            problems.append(RowProblem(None, None, f"line {lineno}", bad))
            continue
        problems += _typed_text_problems(record, count)
        for name, value in record.items():
            if name not in columns:
                columns[name] = [None] * count
            columns[name].append(value)
        count += 1
        if len(record) < len(columns):  # pad the columns this record lacks
            for values in columns.values():
                if len(values) < count:
                    values.append(None)
    if problems:
        raise ManifestError(problems)
    return pa.table({name: _jsonl_column(name, values) for name, values in columns.items()})


def _typed_text_problems(record: dict, row: int) -> list[RowProblem]:
    """A JSON number or object where a prompt belongs is a mistake: refused, never cast."""
    row_id = record.get("id") if isinstance(record.get("id"), str) else None
    return [
        RowProblem(row, row_id, name, f"expected text, got {show_value(record[name])}")
        for name in ("prompt", "negative_prompt")
        if record.get(name) is not None and not isinstance(record[name], str)
    ]


def _lone_surrogate(record: dict) -> str | bool:
    """JSON may escape half a surrogate pair ("\\ud800"): text no file or tokenizer takes."""
    for name, value in record.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"{name}: invalid unicode (a lone surrogate escape): {show_value(value)}"
    return False


def _jsonl_column(name: str, values: list) -> pa.Array:
    def text(value):
        if value is None or isinstance(value, str):
            return value
        if type(value) is int:  # a seed given as a JSON int stays exact
            return str(value)
        if name == "seed" and isinstance(value, float) and value.is_integer() and value < 2**53:
            return str(int(value))  # an exact integral float seed, like 7.0
        return json.dumps(value, ensure_ascii=False)

    if name not in TEXT_COLUMNS:
        try:
            return pa.array(values)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            pass  # mixed types: keep as text; validation says which cells are wrong
    return pa.array([text(value) for value in values], pa.string())
