"""report.html escapes everything a prompt or id can hold."""

from __future__ import annotations

import pyarrow as pa

from pipeline.report import render_report


def test_hostile_text_is_escaped_and_control_characters_replaced():
    catalog = pa.table(
        {
            "id": ["../../etc/passwd"],
            "status": ["ok"],
            "prompt": ["<script>alert(1)</script> nul\x00 \u202e rtl 🐀"],
            "seed": pa.array([2**64 - 1], pa.uint64()),
            "height": [64],
            "width": [64],
            "num_frames": [9],
            "error": [None],
            "uri": ['file:///x/"quoted".mp4'],
        }
    )
    page = render_report(catalog, {"ok": 1, "failed": 0, "pending": 0})
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x00" not in page and "nul\ufffd" in page
    assert "🐀" in page and "18446744073709551615" in page
    assert "&quot;quoted&quot;" in page
