"""The media cells of a manifest (schema.MEDIA_COLUMNS), checked before any GPU time.

Per row: the family takes the cell (a text family refuses an image, an image-to-video family
needs one), `resize` is a known policy. Per distinct location: it exists, is within the
limits, decodes as an image (pipeline/media/probe.py) or, in a video column, as a video
(pipeline/media/video.py); its content hash goes in the row (the key hashes content, never
the URL). A row that gives no height and no width gets them from its image's (else its
video's) aspect ratio at the family's default area. A video row uses the first num_frames
frames of its video: it must have that many, and a row that gives no num_frames takes the
most its video covers, up to the family's default. All problems are reported by row.

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

from pipeline.errors import ConfigError
from pipeline.media.fit import RESIZE_POLICIES, derive_size
from pipeline.media.probe import probe_image
from pipeline.media.source import MediaError, MediaLimits, read_media, stat_media
from pipeline.media.video import probe_video
from pipeline.models import TASK_OF_COLUMN, resolve_model
from pipeline.schema import MEDIA_COLUMNS, RESIZE, VIDEO_COLUMNS

DEFAULT_RESIZE = "crop"
STAT_THREADS = 16
IMAGE, VIDEO = "image", "video"  # what a media column holds


@dataclass(frozen=True)
class _Cell:
    """What a location turned out to be: the facts, or why it cannot be used."""

    sha256: str | None = None
    width: int = 0
    height: int = 0
    frames: int = 1  # a video's frame count
    problem: str = ""


@dataclass(frozen=True)
class ImageFact:
    """An image location as validated for a list cell (reference_rows.py)."""

    uri: str
    sha256: str | None
    problem: str


def image_fact(location: str, options: MediaOptions) -> ImageFact:
    """One image location, resolved, checked and hashed like an `image` cell."""
    url = resolve_location(location, options.base)
    cell = _inspect(url, IMAGE, _stat(url, options), options)
    problem = cell.problem if not cell.problem or url in cell.problem else f"{cell.problem} ({url})"
    return ImageFact(url, cell.sha256, problem)


def kind_of(column: str) -> str:
    return VIDEO if column in VIDEO_COLUMNS else IMAGE


@dataclass
class MediaHashes:
    """Content facts by (location, size, version): a resume re-reads only changed files.
    A store that reports no version (no mtime, no ETag) is always re-read. Entries of
    videos hold their frame count (`frames`); an entry read as the other kind is a miss."""

    entries: dict[str, dict] = field(default_factory=dict)
    changed: bool = False

    def get(self, stat, kind: str = IMAGE) -> dict | None:
        entry = self.entries.get(stat.url)
        if not stat.version or entry is None or entry.get("kind", IMAGE) != kind:
            return None
        return entry if (entry["size"], entry["version"]) == (stat.size, stat.version) else None

    def put(self, stat, kind: str, cell: _Cell) -> None:
        entry = dict(size=stat.size, version=stat.version, sha256=cell.sha256)
        entry.update(width=cell.width, height=cell.height)
        if kind == VIDEO:
            entry.update(kind=VIDEO, frames=cell.frames)
        self.entries[stat.url] = entry
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


def task_models(table, models: pa.ChunkedArray, text_of) -> pa.ChunkedArray:
    """Rows giving a media cell that their checkpoint's family renders with another pipeline
    on the same weights (Family.media_tasks) get that task (spec + its suffix), as
    diffusers does it: `WanVideoToVideoPipeline.from_pretrained(<the T2V repo>)`. Others
    keep their spec (and their family refuses the cell, naming it)."""
    for column, task in TASK_OF_COLUMN.items():
        if column not in table.column_names:
            continue
        gives = pa.array(_given(text_of(table, column)))
        distinct = pc.unique(pc.filter(models, gives)).to_pylist()
        switching = [spec for spec in distinct if _has_task(spec, column)]
        if switching:
            switch = pc.and_(gives, pc.is_in(models, value_set=pa.array(switching)))
            models = pc.if_else(switch, pc.binary_join_element_wise(models, task, ""), models)
    return models


def _has_task(spec: str, column: str) -> bool:
    try:
        return resolve_model(spec).family.task_family(column) is not None
    except (ConfigError, OSError, ValueError):  # reported with the row's model
        return False


def media_columns(table, text_of, codes, families, resolved, params, problems, options):
    """The validated media columns (MEDIA_COLUMNS, RESIZE, then the hash columns) and, in
    `params`, sizes derived for media rows that give none."""
    n = table.num_rows
    names = table.column_names
    family_of = [families[c] for c in codes.tolist()]
    locations, cells, sizing = {}, {}, {}
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
    needed = dict.fromkeys(
        (kind_of(name), url) for name in MEDIA_COLUMNS for url in locations[name].values()
    )
    for kind, url in needed:
        cells[kind, url] = _inspect(url, kind, stats[url], options)
    columns, hashes = [], []
    for name in MEDIA_COLUMNS:
        found = {row: cells[kind_of(name), url] for row, url in locations[name].items()}
        for row, url in locations[name].items():
            problem = found[row].problem
            if problem:  # fetch errors name the location; probe errors do not
                problems.extend([row], name, [problem if url in problem else f"{problem} ({url})"])
        columns.append(_column(n, locations[name]))
        hashes.append(_column(n, {row: cell.sha256 for row, cell in found.items()}))
        found = {row: cell for row, cell in found.items() if not cell.problem}
        if kind_of(name) == VIDEO:  # video-to-video: the clip is the video's first frames
            sources = {r: c for r, c in found.items() if family_of[r].frames_from_video}
            _video_frames(table, name, sources, family_of, params, problems)
        for row, cell in found.items():  # the first media cell of a row sizes it
            sizing.setdefault(row, cell)
    _one_condition(locations, family_of, problems)
    has_media = np.zeros(n, bool)
    has_media[[r for found in locations.values() for r in found]] = True
    columns.append(_resize(table, text_of, has_media, problems, options.resize))
    _derive_sizes(table, sizing, family_of, params)
    return [*columns, *hashes]


def _one_condition(locations: dict, family_of, problems) -> None:
    """Families taking one condition per row (Family.media_one_of) refuse a second one."""
    seen: dict[int, str] = {}
    for name in MEDIA_COLUMNS:
        for row in locations[name]:
            first = seen.setdefault(row, name)
            if first != name and family_of[row].media_one_of:
                problems.extend(
                    [row],
                    name,
                    [f"expected {first} or {name}, not both: {family_of[row].name} models "
                     "take one condition per row"],
                )  # fmt: skip


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
        f"use a model that takes {name} or drop the cell (see `promptreel models`)"
    )


def _needed(name: str, family) -> str:
    what = "a video" if kind_of(name) == VIDEO else "an image"
    return f"expected a path or URL of {what}: {family.name} models need {name}"


def _stat(url: str, options: MediaOptions):
    try:
        return stat_media(url, options.limits, options.storage_options)
    except MediaError as exc:
        return exc


def _inspect(url: str, kind: str, stat, options: MediaOptions) -> _Cell:
    """The hash cache, or one read + probe as `kind`. Never raises for a bad file."""
    try:
        if isinstance(stat, MediaError):
            raise stat
        known = options.hashes.get(stat, kind) if options.hashes is not None else None
        if known is not None:
            return _Cell(known["sha256"], known["width"], known["height"], known.get("frames", 1))
        data = read_media(url, options.limits, options.storage_options)
        if kind == VIDEO:
            video = probe_video(data, options.limits)
            cell = _Cell(video.sha256, video.width, video.height, video.frames)
        else:
            image = probe_image(data, options.limits)
            cell = _Cell(image.sha256, image.width, image.height)
        del data  # one file's bytes at a time
        if options.hashes is not None:
            options.hashes.put(stat, kind, cell)
        return cell
    except MediaError as exc:
        return _Cell(problem=str(exc))


def _column(n: int, found: dict[int, str | None]) -> pa.Array:
    values = [None] * n
    for row, value in found.items():
        values[row] = value
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


def _video_frames(table, name: str, found: dict[int, _Cell], family_of, params, problems):
    """A video row renders its video's first num_frames frames: refuse a row asking for more
    than the video has; a row giving none takes the most its video covers (valid for the
    family), up to the family's default."""
    given_frames = "num_frames" in table.column_names
    for row, cell in found.items():
        shape = family_of[row].shape
        covered = (cell.frames - 1) // shape.frame_step * shape.frame_step + 1
        if shape.max_frames:
            covered = min(covered, shape.max_frames)
        if given_frames and _cell_given(table, "num_frames", row):
            wanted = int(params["num_frames"][row])
            if wanted > cell.frames:
                problems.extend(
                    [row],
                    name,
                    [
                        f"the video has {cell.frames} frames and this row asks for "
                        f"num_frames={wanted} (at most {covered} for {family_of[row].name})"
                    ],
                )
            continue
        params["num_frames"][row] = min(int(params["num_frames"][row]), covered)


def _derive_sizes(table, sizing: dict[int, _Cell], family_of, params) -> None:
    """Rows with an image (or video) and neither height nor width: its aspect ratio at the
    family's default area, rounded to its side multiple (as the Wan I2V model card does)."""
    names = table.column_names
    for row, cell in sizing.items():
        if any(_cell_given(table, n, row) for n in ("height", "width") if n in names):
            continue
        family = family_of[row]
        height, width = family.shape.fixed_size or derive_size(
            cell.width, cell.height, family.default_area, family.shape.side_multiple
        )
        params["height"][row], params["width"][row] = height, width


def _cell_given(table, name: str, row: int) -> bool:
    value = table[name][row].as_py()
    return value is not None and str(value).strip() != ""


def rows_with_media(media_cols: list) -> np.ndarray:
    """Mask of the rows giving any media cell (media_columns' first MEDIA_COLUMNS arrays)."""
    given = [np.asarray(pc.is_valid(c), bool) for c in media_cols[: len(MEDIA_COLUMNS)]]
    return np.logical_or.reduce(given)


def check_media_params(values: dict, params: dict, codes, families, problems) -> None:
    """Video-to-video denoises the last int(num_inference_steps * strength) steps (diffusers'
    get_timesteps): a row where that is 0 would render nothing of the prompt. A condition's
    frame_index must be a frame of the clip."""
    steps, frames = params["num_inference_steps"], params["num_frames"]
    from_video = np.array([not f.call_num_frames for f in families] + [False])[codes]
    strength = np.asarray(values["strength"].to_numpy(zero_copy_only=False), float)
    with np.errstate(invalid="ignore"):
        empty = np.flatnonzero(from_video & (np.floor(strength * steps) < 1))
    problems.extend(
        empty,
        "strength",
        [
            "expected strength x num_inference_steps of at least 1 (diffusers denoises "
            f"int(steps x strength) steps), got {float(strength[r])!r} x {int(steps[r])}"
            for r in empty.tolist()
        ],
    )
    index = np.asarray(values["frame_index"].to_numpy(zero_copy_only=False), float)
    with np.errstate(invalid="ignore"):
        outside = np.flatnonzero(index >= frames)
    problems.extend(
        outside,
        "frame_index",
        [
            f"expected a frame of the clip, 0 to {int(frames[r]) - 1} (num_frames "
            f"{int(frames[r])}), got {int(index[r])}"
            for r in outside.tolist()
        ],
    )
