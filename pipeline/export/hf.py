"""`--to hf`: a Hugging Face `videofolder` that `datasets.load_dataset("videofolder",
data_dir=DEST)` loads: the clips under `clips/<k0k1>/<key>.mp4` (content-addressed as in
the run dir: rows that share a request share a file) and `metadata.jsonl`, one line per
exported row: `file_name`, the prompt as `text`, then every catalog column, seeds as
text (a JSON column mixing 2**64-1 with small seeds is read back as float64).
A media row's images (as the model got them) are copied beside the clips as
`inputs/<k0k1>/<key>.<name>.png`, and `<name>_file_name` columns name them.
metadata.jsonl is written last: without it the folder is visibly not a finished export.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter

from pipeline.errors import ConfigError
from pipeline.export.options import ExportOptions, ExportPlan
from pipeline.export.source import Source
from pipeline.export.units import FileUnit, IndexUnit
from pipeline.rundir.layout import input_relpath

# Extensions videofolder reads (datasets' VideoFolder.EXTENSIONS): it skips the others.
VIDEOFOLDER_EXTENSIONS = frozenset({"mp4", "mkv", "avi", "mpeg", "mov"})
# Names videofolder gives a meaning; a catalog column of that name is kept as `catalog_<name>`.
RESERVED = ("file_name", "text", "video")


def check_formats(source: Source) -> None:
    formats = Counter(clip.ext for clip in source.clips)
    refused = {ext: n for ext, n in formats.items() if ext != "mp4"}
    if refused:
        found = ", ".join(f"{n} {ext}" for ext, n in sorted(refused.items()))
        raise ConfigError(
            f"--to hf needs mp4 clips: videofolder reads {sorted(VIDEOFOLDER_EXTENSIONS)} and "
            f"silently skips the rest, and this run has {found} clip(s). Render the manifest "
            "again with --format mp4 into a new --out, or use --to webdataset or --to files, "
            "which take any clip format"
        )


def metadata_line(source: Source, file_name: str, row: dict, inputs: dict) -> str:
    fields = {"file_name": file_name, "text": row["prompt"]}
    fields |= {f"{name}_file_name": path for name, path in inputs.items()}
    for name, value in source.json_row(row).items():
        fields[f"catalog_{name}" if name in RESERVED else name] = value
    return json.dumps(fields, ensure_ascii=False)


def plan(source: Source, dest, options: ExportOptions) -> ExportPlan:
    check_formats(source)
    units, lines = {}, []
    for clip in source.clips:
        file_name = posixpath.join("clips", clip.key[:2], f"{clip.key}.{clip.ext}")
        if clip.key not in units:
            units[clip.key] = FileUnit(
                dest.path(file_name), clip.row["bytes"], lambda c=clip: source.read_clip(c)
            )
        inputs = {}
        for name in source.input_names(clip):
            inputs[name] = input_relpath(clip.key, name)
            units.setdefault(
                inputs[name],
                FileUnit(
                    dest.path(inputs[name]),
                    source.input_size(clip, name),
                    lambda c=clip, n=name: source.read_input(c, n),
                ),
            )
        lines.append(metadata_line(source, file_name, clip.row, inputs))
    renamed = [name for name in RESERVED if name in source.catalog.schema.names]
    notes = tuple(
        f"catalog column {name!r} is in metadata.jsonl as 'catalog_{name}'" for name in renamed
    )
    final = IndexUnit(dest.path("metadata.jsonl"), "".join(f"{line}\n" for line in lines).encode())
    return ExportPlan(list(units.values()), final, notes)
