"""report.html: a static page of counts and a table of rows. Every string is escaped."""

from __future__ import annotations

import html
import re

import pyarrow as pa

from pipeline.storage import RunDir

MAX_ROWS = 2000  # the catalog has them all; the page stays light
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(value) -> str:
    """Escaped for HTML; control characters (NUL included) shown as U+FFFD."""
    return html.escape(_CONTROL.sub("\ufffd", "" if value is None else str(value)))


_COLUMNS = ("id", "status", "prompt", "seed", "height", "width", "num_frames", "error", "uri")


def render_report(catalog: pa.Table, counts: dict) -> str:
    head = "".join(f"<th>{_text(name)}</th>" for name in _COLUMNS)
    body = []
    for row in catalog.select(list(_COLUMNS)).slice(0, MAX_ROWS).to_pylist():
        cells = "".join(f"<td>{_text(row[name])}</td>" for name in _COLUMNS)
        body.append(f'<tr class="{_text(row["status"])}">{cells}</tr>')
    more = catalog.num_rows - MAX_ROWS
    summary = " · ".join(f"{_text(k)}: {v}" for k, v in counts.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>promptreel report</title>
<style>body{{font-family:sans-serif}} td{{padding:2px 8px;max-width:40em;overflow-wrap:anywhere}}
tr.failed{{background:#fdd}}</style></head>
<body><h1>promptreel report</h1><p>{summary}</p>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
{f"<p>... and {more} more rows in catalog.parquet</p>" if more > 0 else ""}
</body></html>
"""


def write_report(run: RunDir, catalog: pa.Table, counts: dict) -> None:
    run.write(run.report, render_report(catalog, counts).encode("utf-8"))
