"""The input of every export: a finished run's catalog and its clips (read-only).

Clips are found under the run dir by key (`clips/<k0k1>/<key>.<ext>`), not by the
catalog's `uri`, so a run dir copied or synced elsewhere exports the same. Each clip
is checked against the catalog's size and sha256 as it is read.
"""

from __future__ import annotations

import base64
import hashlib
import math
import posixpath
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import ConfigError
from pipeline.rundir.catalog import read_catalog
from pipeline.rundir.layout import INPUTS_DIR, RunDir
from pipeline.rundir.storage import describe_storage_error
from pipeline.schema import MEDIA_COLUMNS, SELECTED

# JSON has one number type, and readers (pyarrow.json, pandas) turn an integer column
# mixing values above 2**63 with small ones into float64: 2**64-1 would lose its value.
STRING_COLUMNS = ("seed",)


def clip_ext(key: str, uri: str | None) -> str:
    """The clip's extension as written by the run (`mp4`, `webm`, `gif`, or longer, such
    as `png.tar`): everything after `<key>.` in the file name."""
    name = posixpath.basename(uri or "")
    if name.startswith(f"{key}.") and len(name) > len(key) + 1:
        return name[len(key) + 1 :]
    _, dot, ext = name.partition(".")
    if not dot or not ext:
        raise ConfigError(f"catalog row with key {key!r}: cannot tell the clip format of {uri!r}")
    return ext


def json_value(value):
    """A catalog value as plain JSON: non-finite floats as null, bytes as base64,
    dates as ISO text, decimals as text; lists and structs recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


@dataclass(frozen=True)
class Clip:
    """One exported row: its position among the exported rows and its catalog row."""

    ordinal: int
    row: dict
    ext: str

    @property
    def key(self) -> str:
        return self.row["key"]

    @property
    def id(self) -> str:
        return self.row["id"]


@dataclass(frozen=True)
class Source:
    """A finished run opened for export."""

    run: RunDir
    selected_only: bool = False  # only rows the run selected (best of N)

    @cached_property
    def catalog(self) -> pa.Table:
        catalog = read_catalog(self.run)
        if catalog is None:
            raise ConfigError(
                f"{self.run.url}: no catalog.parquet, so the run has not finished; "
                "run the same `promptreel render` command to finish it, then export"
            )
        no_selection = SELECTED not in catalog.column_names or (
            catalog[SELECTED].null_count == catalog.num_rows
        )
        if self.selected_only and no_selection:
            raise ConfigError(
                f"{self.run.url}: --selected-only, but the run selected nothing (no --keep "
                "or --min-score); add one with `promptreel score RUN --keep K --by NAME`"
            )
        return catalog

    @cached_property
    def string_columns(self) -> frozenset[str]:
        """Columns written as text in JSON: seeds, and any other unsigned 64-bit column."""
        schema = self.catalog.schema
        return frozenset(
            name
            for name in schema.names
            if name in STRING_COLUMNS or schema.field(name).type == pa.uint64()
        )

    def json_row(self, row: dict) -> dict:
        """The catalog row as JSON-safe values, with the string columns as text."""
        return {
            name: (
                str(value)
                if name in self.string_columns and value is not None
                else json_value(value)
            )
            for name, value in row.items()
        }

    @cached_property
    def status_counts(self) -> Counter:
        """Rows by status; with selected_only, an ok row not selected counts as such."""
        statuses = self.catalog["status"].to_pylist()
        if self.selected_only:
            kept = pc.fill_null(self.catalog[SELECTED], False).to_pylist()
            statuses = [s if s != "ok" or k else "not selected" for s, k in zip(statuses, kept)]
        return Counter(statuses)

    def ok_table(self) -> pa.Table:
        ok = pc.equal(self.catalog["status"], "ok")
        if self.selected_only:
            ok = pc.and_(ok, pc.fill_null(self.catalog[SELECTED], False))
        return self.catalog.filter(ok)

    @cached_property
    def clips(self) -> list[Clip]:
        """The `ok` rows in catalog (= manifest) order; failed and pending rows have no clip."""
        rows = self.ok_table().to_pylist()
        return [Clip(i, row, clip_ext(row["key"], row["uri"])) for i, row in enumerate(rows)]

    def left_out(self) -> dict[str, int]:
        return {status: n for status, n in sorted(self.status_counts.items()) if status != "ok"}

    def clip_path(self, clip: Clip) -> str:
        return self.run.clip_path(clip.key, clip.ext)

    @staticmethod
    def input_names(clip: Clip) -> tuple[str, ...]:
        """The media inputs of a row (image, last_image), in schema order."""
        return tuple(name for name in MEDIA_COLUMNS if clip.row.get(name) is not None)

    @cached_property
    def _input_sizes(self) -> dict[str, int]:
        """Sizes of every file under inputs/, in one listing."""
        try:
            found = self.run.fs.find(self.run.path(INPUTS_DIR), detail=True)
        except FileNotFoundError:
            return {}
        return {path: info["size"] for path, info in found.items()}

    def input_size(self, clip: Clip, name: str) -> int:
        path = self.run.input_path(clip.key, name)
        size = self._input_sizes.get(path, self._input_sizes.get(path.lstrip("/")))
        if size is None:
            raise ConfigError(
                f"row id {clip.id!r}: its {name} {self.run.uri(path)} is missing from the run dir"
            )
        return size

    def read_input(self, clip: Clip, name: str) -> bytes:
        """The row's media input as the model got it (PNG, from the run dir)."""
        return self._read(clip, self.run.input_path(clip.key, name), name)

    def _read(self, clip: Clip, path: str, what: str) -> bytes:
        try:
            return self.run.fs.cat_file(path)
        except FileNotFoundError:
            raise ConfigError(
                f"row id {clip.id!r}: its {what} {self.run.uri(path)} is missing from the run dir"
            ) from None
        except OSError as exc:
            cause = describe_storage_error(self.run.fs, path, exc)
            raise ConfigError(
                f"row id {clip.id!r}: cannot read {self.run.uri(path)}: {cause}"
            ) from exc

    def read_clip(self, clip: Clip) -> bytes:
        """The clip's bytes, checked against the catalog; a missing or changed clip is an
        error naming the row (the run dir was edited after it finished)."""
        path = self.clip_path(clip)
        data = self._read(clip, path, "clip")
        if len(data) != clip.row["bytes"] or hashlib.sha256(data).hexdigest() != clip.row["sha256"]:
            raise ConfigError(
                f"row id {clip.id!r}: {self.run.uri(path)} does not match the catalog's "
                "bytes/sha256 (changed after the run finished); `promptreel verify` checks them all"
            )
        return data
