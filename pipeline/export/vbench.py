"""`--to vbench`: the folder VBench's evaluator reads.

What VBench does (vbench/__init__.py, build_full_info_json): standard mode lists DEST
with `os.listdir`, takes the extension of the *first* name listed, and looks up
`f"{prompt}-{i}{ext}"` for i = 0..4, the prompt verbatim; custom mode keeps the `.mp4`
and `.gif` names and takes the prompt from the name (or from a JSON `{file name:
prompt}` given as --prompt_file). Its loader reads mp4 and gif. So DEST holds only
`{name}-{i}.{ext}` clips of one format; `i` is the row's position among the catalog
rows with the same name (manifest order), counted over every row, so a failed row's
index is missing, not filled by the next one; names are not cleaned (VBench compares
them byte for byte) and a name no file system can hold is refused, listing the rows.
The custom-mode prompt file goes beside DEST (`DEST.prompts.json`), written last.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from pipeline.errors import ConfigError
from pipeline.export.naming import vbench_file_name, vbench_name_problem
from pipeline.export.options import ExportOptions, ExportPlan
from pipeline.export.source import Source
from pipeline.export.units import FileUnit, IndexUnit

VBENCH_FORMATS = ("mp4", "gif")  # what vbench.utils.load_video decodes
PROMPT_FILE_SUFFIX = ".prompts.json"
MAX_LISTED = 50


def name_column(source: Source, options: ExportOptions) -> str:
    column = options.name_column or "prompt"
    names = source.catalog.schema.names
    if column not in names:
        raise ConfigError(
            f"--name-column {column!r}: the catalog has no such column; it has {names}"
        )
    return column


def indices(names: list) -> list[int]:
    """Each row's position among the rows with the same name, in catalog order."""
    seen: Counter = Counter()
    out = []
    for name in names:
        out.append(seen[name])
        seen[name] += 1
    return out


def check_formats(source: Source) -> str:
    formats = sorted({clip.ext for clip in source.clips})
    if len(formats) > 1 or (formats and formats[0] not in VBENCH_FORMATS):
        raise ConfigError(
            f"--to vbench needs clips of one format VBench reads ({', '.join(VBENCH_FORMATS)}); "
            f"this run has {', '.join(formats)}. Render again with --format mp4 into a new --out"
        )
    return formats[0] if formats else "mp4"


def plan(source: Source, dest, options: ExportOptions) -> ExportPlan:
    ext = check_formats(source)
    column = name_column(source, options)
    catalog = source.catalog
    names = catalog[column].to_pylist()
    index_of = indices(names)
    statuses = catalog["status"].to_pylist()
    ids = catalog["id"].to_pylist()
    position = {row_id: row for row, row_id in enumerate(ids)}

    problems, units, prompts = [], [], {}
    for clip in source.clips:
        row = position[clip.id]
        name, i = names[row], index_of[row]
        problem = vbench_name_problem(name, i, ext)
        if problem:
            problems.append(
                f"row {row} (id {clip.id!r}): {column} {json.dumps(name)[:80]} {problem}"
            )
            continue
        file_name = vbench_file_name(name, i, ext)
        units.append(
            FileUnit(dest.path(file_name), clip.row["bytes"], lambda c=clip: source.read_clip(c))
        )
        prompts[file_name] = clip.row["prompt"]
    if problems:
        listed = problems[:MAX_LISTED] + (
            [f"... and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else []
        )
        raise ConfigError(
            f"--to vbench: {len(problems)} row(s) have a name that cannot be a file name "
            f"(VBench needs `{{{column}}}-{{i}}.{ext}` verbatim); give --name-column a column "
            "of names that can:\n  " + "\n  ".join(listed)
        )
    data = json.dumps(prompts, ensure_ascii=False, indent=2).encode()
    final = IndexUnit(dest.beside(PROMPT_FILE_SUFFIX), data)
    return ExportPlan(units, final, sample_counts(names, statuses))


def sample_counts(names: list, statuses: list) -> tuple[str, ...]:
    """One line per name: exported samples of all its rows, and which indices are
    missing and why (a failed or pending row), so a short prompt is seen before VBench
    warns about it."""
    by_name: dict = defaultdict(list)
    for name, status in zip(names, statuses):
        by_name[name].append(status)
    lines = []
    for name, rows in by_name.items():
        ok = rows.count("ok")
        line = f"{ok}/{len(rows)}  {json.dumps(name, ensure_ascii=False)}"
        missing = [f"-{i} {status}" for i, status in enumerate(rows) if status != "ok"]
        if missing:
            line += f"  (missing {', '.join(missing)})"
        lines.append(line)
    full = sum(1 for rows in by_name.values() if all(s == "ok" for s in rows))
    lines.append(
        f"{len(by_name)} name(s): {full} with every sample, {len(by_name) - full} missing some"
    )
    return tuple(lines)
