"""report.html from ReportData: one self-contained file (inline style, script and SVG),
relative links only, every string escaped. A Content-Security-Policy allows only this
page's own script (by hash), no network fetch, and images and clips (played in place,
with their sound) from the run dir."""

from __future__ import annotations

import base64
import hashlib
import html
import json

from pipeline.report.assets import SCRIPT, STYLE
from pipeline.report.chart import throughput_svg
from pipeline.report.data import ReportData, clean
from pipeline.schema import QC_FLAGS, QC_REPORTED

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = (
    "default-src 'none'; img-src 'self' file:; media-src 'self' file:; "
    "style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)
FILTERS = ("all", "ok", "failed", "pending", "flagged", "kept")


def text(value) -> str:
    """Escaped for HTML text and attributes; control characters shown as U+FFFD."""
    return html.escape(clean(value))


def json_for_script(value) -> str:
    """JSON that cannot end its <script> element or start markup inside it."""
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    data = data.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
    return data.decode("utf-8")


def _counts(counts: dict) -> str:
    return "".join(
        f'<span class="{text(name)}"><b>{int(n)}</b> {text(name)}</span>'
        for name, n in counts.items()
    )


def _failures(data: ReportData) -> str:
    if not data.failures:
        return "<p>No failures.</p>"
    rows = "".join(
        f"<tr><td>{text(g.error_class)}</td><td>{g.count}</td>"
        f'<td class="ids">{", ".join(f"<bdi>{text(i)}</bdi>" for i in g.ids)}'
        f"{f' and {g.count - len(g.ids)} more' if g.count > len(g.ids) else ''}</td>"
        f"<td>{text(g.example[:300])}</td></tr>"
        for g in data.failures
    )
    return (
        "<table><thead><tr><th>error class</th><th>rows</th><th>row ids</th>"
        f"<th>first message</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _score(value) -> str:
    return "" if value is None else f"{value:.2f}"


def _qc(data: ReportData) -> str:
    mode = data.context.get("qc", "flag")
    if mode == "off":
        return "<p>QC was off for this run (<code>--qc off</code>).</p>"
    if not data.flag_counts:
        return f"<p>No clip flagged (<code>--qc {text(mode)}</code>).</p>"
    summary = ", ".join(f"{text(n)}: {c}" for n, c in data.flag_counts.items())
    rows = "".join(
        f"<tr><td><bdi>{text(r['id'])}</bdi></td><td>{text(r['status'])}</td>"
        f"<td>{text(' '.join(r['flags']))}</td>"
        + "".join(f"<td>{_score(r[name])}</td>" for name in QC_REPORTED)
        + "</tr>"
        for r in data.flagged
    )
    more = data.flagged_total - len(data.flagged)
    return (
        f"<p>{data.flagged_total} rows flagged ({summary}; <code>--qc {text(mode)}</code>). "
        "Filter the contact sheet by <i>flagged</i> to see them.</p>"
        "<table><thead><tr><th>id</th><th>status</th><th>flags</th><th>luma mean</th>"
        "<th>luma std</th><th>motion</th><th>flicker</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        + (f"<p>... and {more} more in catalog.parquet ({QC_FLAGS}).</p>" if more > 0 else "")
    )


def _settings(context: dict) -> str:
    shown = {
        name: context[name]
        for name in ("model", "model_fingerprint", "render", "encode", "qc", "versions")
        if name in context
    }
    return f"<pre>{text(json.dumps(shown, indent=2, sort_keys=True, default=str))}</pre>"


def render_page(data: ReportData) -> str:
    context = data.context
    state = "final" if context.get("final") else "live (rewritten during the run)"
    chart = throughput_svg(data.throughput, data.bin_s) or "<p>Nothing finished yet.</p>"
    buttons = "".join(
        f'<button data-filter="{f}" aria-pressed="{"true" if f == "all" else "false"}">{f}</button>'
        for f in FILTERS
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{text(CSP)}">
<meta name="viewport" content="width=device-width">
<title>promptreel report</title><style>{STYLE}</style></head>
<body>
<h1>promptreel report</h1>
<p class="meta">{text(state)} · written {text(context.get("written_at", ""))} UTC ·
manifest <bdi>{text(context.get("manifest", ""))}</bdi></p>
<p class="counts">{_counts(data.counts)}</p>
<h2>Contact sheet</h2>
<div class="bar">{buttons}<button id="prev">&larr; prev</button>
<button id="next">next &rarr;</button><span id="pageinfo"></span></div>
<noscript><p>The contact sheet needs JavaScript; catalog.parquet has every row.</p></noscript>
<div id="sheet"></div>
<h2>Failures by error class</h2>{_failures(data)}
<h2>QC flags</h2>{_qc(data)}
<h2>Throughput</h2>{chart}
<h2>Settings</h2>{_settings(context)}
<script type="application/json" id="rows">{json_for_script(data.sheet)}</script>
<script>{SCRIPT}</script>
</body></html>
"""
