"""The media cells of a manifest (schema.MEDIA_COLUMNS), checked before any GPU time.

Per row: the family takes the cell (a text family refuses an image, an image-to-video family
needs one), `resize` is a known policy. Per distinct location: it exists, is within the
limits, decodes as an image (pipeline/media/probe.py); its content hash goes in the row (the
key hashes content, never the URL). A row that gives no height and no width gets them from
its image's aspect ratio at the family's default area. All problems are reported by row.

Relative paths are resolved against the manifest's folder (local or remote), so a manifest
and its images can move together. Files are read one at a time: the driver never holds more
than one file's bytes. A run dir's hash cache (MediaHashes) spares re-reading unchanged files.
"""

from __future__ import annotations

import json
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.media.fit import RESIZE_POLICIES, derive_size
from pipeline.media.probe import ImageInfo, probe_image
from pipeline.media.source import MediaError, MediaLimits, read_media, stat_media
from pipeline.schema import MEDIA_COLUMNS, RESIZE

DEFAULT_RESIZE = "crop"
STAT_THREADS = 16


@dataclass
class MediaHashes:
    """Content facts by (location, size, version): a resume re-reads only changed files.
    A store that reports no version (no mtime, no ETag) is always re-read."""

    entries: dict[str, dict] = field(default_factory=dict)
    changed: bool = False

    def get(self, stat) -> dict | None:
        entry = self.entries.get(stat.url)
        if not stat.version or entry is None:
            return None
        return entry if (entry["size"], entry["version"]) == (stat.size, stat.version) else None

    def put(self, stat, info: ImageInfo) -> None:
        self.entries[stat.url] = dict(
            size=stat.size, version=stat.version, sha256=info.sha256, width=info.width,
            height=info.height,
        )  # fmt: skip
        self.changed = True

    def to_json(self) -> str:
        return json.dumps(self.entries, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MediaHashes:
        return cls(json.loads(text))


@dataclass(frozen=True)
class MediaOptions:
    limits: MediaLimits = field(default_factory=MediaLimits)
    resize: str = DEFAULT_RESIZE  # --resize: for media rows without a `resize` cell
    base: str = ""  # the manifest's folder: relative locations are resolved against it
    storage_options: dict | None = None
    hashes: MediaHashes | None = None
    # --lora: the adapters of rows without a `lora` cell (read like media: same sources,
    # the manifest's folder for relative paths); pipeline/plan/lora_rows.py.
    lora: str | None = None


@dataclass(frozen=True)
class _Cell:
    """What a location turned out to be: the facts, or why it cannot be used."""

    sha256: str | None = None
    width: int = 0
    height: int = 0
    problem: str = ""


def manifest_folder(url: str) -> str:
    """The folder of a manifest location (local path or URL), for relative media paths."""
    return posixpath.dirname(url) if "://" in url else os.path.dirname(os.path.abspath(url))


def resolve_location(value: str, base: str) -> str:
    """A media cell as a location to open: URLs and absolute paths as given (~ expanded),
    relative paths against the manifest's folder."""
    value = value.strip()
    if "://" in value:
        return value
    value = os.path.expanduser(value)
    if os.path.isabs(value) or not base:
        return os.path.abspath(value)
    if "://" in base:
        return posixpath.join(base, value)
    return os.path.normpath(os.path.join(base, value))


def media_columns(table, text_of, codes, families, resolved, params, problems, options):
    """The validated media columns (MEDIA_COLUMNS, RESIZE, then the hash columns) and, in
    `params`, sizes derived for media rows that give none."""
    n = table.num_rows
    names = table.column_names
    family_of = [families[c] for c in codes.tolist()]
    locations, cells = {}, {}
    for name in MEDIA_COLUMNS:
        values = text_of(table, name) if name in names else pa.nulls(n, pa.string())
        given = _given(values)
        if name in names and not _text_like(table[name].type):
            problems.add(given, name, "a path or URL as text")
            given[:] = False
        takes = np.array([name in f.media_inputs for f in family_of], bool)
        needs = np.array([name in f.media_required for f in family_of], bool)
        _refuse(given & ~takes & resolved, name, family_of, problems, _not_taken)
        _refuse(~given & needs & resolved, name, family_of, problems, _needed)
        rows = np.flatnonzero(given & takes & resolved)
        texts = values.take(pa.array(rows)).to_pylist() if len(rows) else []
        locations[name] = {
            int(r): resolve_location(t, options.base) for r, t in zip(rows, texts, strict=True)
        }
    urls = list(dict.fromkeys(u for found in locations.values() for u in found.values()))
    # Stats carry no content: many at once (remote stores are round trips); each file's
    # bytes are then read one at a time, only where the hash cache cannot answer.
    with ThreadPoolExecutor(STAT_THREADS) as pool:
        stats = dict(zip(urls, pool.map(lambda url: _stat(url, options), urls), strict=True))
    for url in urls:
        cells[url] = _inspect(url, stats[url], options)
    columns, hashes = [], []
    for name in MEDIA_COLUMNS:
        found = locations[name]
        for row, url in found.items():
            problem = cells[url].problem
            if problem:  # fetch errors name the location; probe errors do not
                problems.extend([row], name, [problem if url in problem else f"{problem} ({url})"])
        columns.append(_column(n, found, lambda url: url))
        hashes.append(_column(n, found, lambda url: cells[url].sha256))
    has_media = np.zeros(n, bool)
    has_media[[r for found in locations.values() for r in found]] = True
    columns.append(_resize(table, text_of, has_media, problems, options.resize))
    _derive_sizes(table, locations.get("image", {}), cells, family_of, params)
    return [*columns, *hashes]


def _given(values) -> np.ndarray:
    blank = pc.fill_null(
        pc.or_(pc.equal(pc.utf8_length(values), 0), pc.utf8_is_space(values)), True
    )
    return ~np.asarray(blank.to_numpy(zero_copy_only=False), bool)


def _text_like(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)


def _refuse(mask, name, family_of, problems, message) -> None:
    rows = np.flatnonzero(mask)
    if len(rows):
        problems.extend(rows, name, [message(name, family_of[r]) for r in rows.tolist()])


def _not_taken(name: str, family) -> str:
    takes = ", ".join(family.media_inputs) or "none"
    return (
        f"{family.name} models do not take {name} (their media inputs: {takes}); "
        "use an image-to-video model or drop the cell (see `promptreel models`)"
    )


def _needed(name: str, family) -> str:
    return f"expected a path or URL of an image: {family.name} models need {name}"


def _stat(url: str, options: MediaOptions):
    try:
        return stat_media(url, options.limits, options.storage_options)
    except MediaError as exc:
        return exc


def _inspect(url: str, stat, options: MediaOptions) -> _Cell:
    """The hash cache, or one read + probe. Never raises for a bad file."""
    try:
        if isinstance(stat, MediaError):
            raise stat
        known = options.hashes.get(stat) if options.hashes is not None else None
        if known is not None:
            return _Cell(known["sha256"], known["width"], known["height"])
        data = read_media(url, options.limits, options.storage_options)
        info = probe_image(data, options.limits)
        del data  # one file's bytes at a time
        if options.hashes is not None:
            options.hashes.put(stat, info)
        return _Cell(info.sha256, info.width, info.height)
    except MediaError as exc:
        return _Cell(problem=str(exc))


def _column(n: int, found: dict[int, str], value_of) -> pa.Array:
    values = [None] * n
    for row, url in found.items():
        values[row] = value_of(url)
    return pa.array(values, pa.string())


def _resize(table, text_of, has_media, problems, default: str) -> pa.Array:
    """Each media row's resize policy (its cell, else --resize); null for text rows."""
    if RESIZE in table.column_names:
        values = pc.utf8_lower(pc.utf8_trim_whitespace(text_of(table, RESIZE)))
        given = _given(values)
        known = np.asarray(
            pc.fill_null(pc.is_in(values, value_set=pa.array(RESIZE_POLICIES)), False), bool
        )
        problems.add(given & ~known, RESIZE, "one of " + ", ".join(RESIZE_POLICIES))
        values = pc.if_else(pa.array(given & known), values, default)
    else:
        values = pa.array([default] * table.num_rows, pa.string())
    return pc.if_else(pa.array(has_media), values, pa.scalar(None, pa.string()))


def _derive_sizes(table, images: dict[int, str], cells, family_of, params) -> None:
    """Rows with an image and neither height nor width: the image's aspect ratio at the
    family's default area, rounded to its side multiple (as the Wan I2V model card does)."""
    names = table.column_names
    for row, url in images.items():
        cell = cells[url]
        if cell.problem or any(
            _cell_given(table, n, row) for n in ("height", "width") if n in names
        ):
            continue
        family = family_of[row]
        height, width = derive_size(
            cell.width, cell.height, family.default_area, family.shape.side_multiple
        )
        params["height"][row], params["width"][row] = height, width


def _cell_given(table, name: str, row: int) -> bool:
    value = table[name][row].as_py()
    return value is not None and str(value).strip() != ""
