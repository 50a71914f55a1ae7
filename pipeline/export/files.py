"""`--to files`: every clip under a human name, `anime,_cute_rat_seed3048053658270753.mp4`
(rules in naming.human_stem), unique even on a case-insensitive disk, and `index.csv`
(file_name, id, key, seed, prompt), written last, mapping each name back to its row. A
media row's images sit beside its clip as `<name>.<input>.png` (`..._seed7.image.png`),
named in index.csv's `<input>_file_name` columns (present when some row has media)."""

from __future__ import annotations

import csv
import io

from pipeline.errors import ConfigError
from pipeline.export.naming import human_name, unique_names
from pipeline.export.options import ExportOptions, ExportPlan
from pipeline.export.source import Source
from pipeline.export.units import FileUnit, IndexUnit
from pipeline.schema import MEDIA_COLUMNS

INDEX_COLUMNS = ("file_name", "id", "key", "seed", "prompt")


def names_for(source: Source, options: ExportOptions) -> list[str]:
    column = options.name_column or "prompt"
    if column not in source.catalog.schema.names:
        raise ConfigError(
            f"--name-column {column!r}: the catalog has no such column; it has "
            f"{source.catalog.schema.names}"
        )
    names = [
        human_name(str(clip.row[column] or ""), clip.row["seed"], clip.ext, options.name_bytes)
        for clip in source.clips
    ]
    return unique_names(names, [clip.id for clip in source.clips])


def input_name(clip_name: str, ext: str, name: str) -> str:
    """The sibling file of a clip's media input: the clip's stem, the input, png."""
    return f"{clip_name[: -len(ext) - 1]}.{name}.png"


def plan(source: Source, dest, options: ExportOptions) -> ExportPlan:
    names = names_for(source, options)
    units = [
        FileUnit(dest.path(name), clip.row["bytes"], lambda c=clip: source.read_clip(c))
        for name, clip in zip(names, source.clips)
    ]
    media = [n for n in MEDIA_COLUMNS if any(n in source.input_names(c) for c in source.clips)]
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow([*INDEX_COLUMNS, *(f"{n}_file_name" for n in media)])
    for name, clip in zip(names, source.clips):
        row, inputs = clip.row, source.input_names(clip)
        siblings = [input_name(name, clip.ext, n) if n in inputs else "" for n in media]
        for sibling, n in zip(siblings, media):
            if sibling:
                size = source.input_size(clip, n)
                read = lambda c=clip, n=n: source.read_input(c, n)  # noqa: E731
                units.append(FileUnit(dest.path(sibling), size, read))
        writer.writerow([name, row["id"], row["key"], str(row["seed"]), row["prompt"], *siblings])
    final = IndexUnit(dest.path("index.csv"), sink.getvalue().encode("utf-8"))
    return ExportPlan(units, final)
