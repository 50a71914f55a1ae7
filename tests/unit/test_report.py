"""report.html as text: escaping, failure groups, QC, throughput, self-containment."""

from __future__ import annotations

import re

import pyarrow as pa

from pipeline.actor.worker import outcome
from pipeline.report.data import error_class, sample_rows
from pipeline.report.live import LiveReport
from pipeline.report.page import json_for_script
from pipeline.rundir.layout import RunDir
from pipeline.rundir.ledger import Ledger
from pipeline.schema import CATALOG_REQUEST_COLUMNS
from tests.support.report_fixture import make_run_dir


def test_hostile_strings_never_reach_the_page_as_markup(tmp_path):
    run, _ = make_run_dir(tmp_path / "run", 60)
    page = open(run.report, encoding="utf-8").read()
    # Exactly our two script elements; no prompt opened or closed one.
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "<img" not in page and "<b>bold" not in page
    assert "\x00" not in page and "\x07" not in page and "\x1b" not in page
    data = page.split('id="rows">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data and "&" not in data
    # Server-rendered tables escape: the failed row 10 has a hostile id.
    failures = page.split("<h2>Failures by error class</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<bdi>&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;-10</bdi>" in failures


def test_json_for_script_cannot_close_its_element():
    text = json_for_script(["</script><!--", "a & b", "\u2028"])
    assert "</" not in text and "<!--" not in text and "&" not in text


def test_failures_grouped_by_class_with_counts_and_ids(tmp_path):
    run, catalog = make_run_dir(tmp_path / "run", 700)
    page = open(run.report, encoding="utf-8").read()
    failed = [
        i for i, s in zip(catalog["id"].to_pylist(), catalog["status"].to_pylist()) if s == "failed"
    ]
    assert len(failed) == 100
    table = page.split("<h2>Failures by error class</h2>", 1)[1].split("<h2>", 1)[0]
    for name in (
        "EncodeError",
        "quarantined: ActorDiedError",
        "storage error: injected storage fault",
    ):
        assert f"<td>{name}</td><td>25</td>" in table
    assert "model output contains NaN or inf (N values, N%)" in table
    assert "row-3</bdi>" in table and "and 5 more" in table  # 20 ids listed of 25


def test_error_class():
    assert error_class("EncodeError: ffmpeg failed") == "EncodeError"
    assert error_class("QCFailed: black (9 black frames)") == "QCFailed"
    assert error_class("quarantined after 2 attempts: ActorDiedError: x") == (
        "quarantined: ActorDiedError"
    )
    assert error_class("storage error: timeout after 30 s") == "storage error: timeout after N s"


def test_qc_throughput_settings_and_only_relative_links(tmp_path):
    run, catalog = make_run_dir(tmp_path / "run", 300)
    page = open(run.report, encoding="utf-8").read()
    flagged = sum(1 for f in catalog["qc_flags"].to_pylist() if f)
    assert f"{flagged} rows flagged (black: {flagged}, frozen: {flagged};" in page
    assert '<svg class="chart"' in page and page.count("<rect ") >= 2
    assert "dir:0123456789abcdef" in page and "s3://bucket/&lt;prompts&gt;.parquet" in page
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links == []  # the script gives cards relative links (see test_report_browser)
    assert "file:/" not in page and "http:" not in page and "https:" not in page


def test_sample_keeps_every_failed_and_flagged_row_in_order(tmp_path):
    _, catalog = make_run_dir(tmp_path / "run", 2000, thumbs_for=0)
    sample = sample_rows(catalog, 500)
    assert sample.num_rows == 500
    positions = [int(i.split("-")[-1]) for i in sample["id"].to_pylist()]
    assert positions == sorted(positions)
    marked = [
        i
        for i, (s, f) in enumerate(
            zip(catalog["status"].to_pylist(), catalog["qc_flags"].to_pylist())
        )
        if s == "failed" or f
    ]
    assert set(marked) <= set(positions)
    assert sample_rows(catalog, 5000) is catalog


def test_live_report_is_built_from_the_ledger_in_a_thread(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    columns = {name: pa.nulls(2) for name in CATALOG_REQUEST_COLUMNS if name not in ("id", "key")}
    columns["prompt"] = pa.array(["<script>x</script>", "p"])
    columns["seed"] = pa.array([1, 2], pa.uint64())
    rows = pa.table({"id": ["a", "b"], "key": ["ab" * 16, "cd" * 16], **columns})
    ledger = Ledger(run, flush_interval_s=0)
    ledger.append([outcome("ab" * 16, "ok", finished_at="2026-12-01T10:00:00.000+00:00")])
    never = LiveReport(run, rows, ledger, lambda counts: {"counts": counts}, interval_s=0)
    assert not never.tick()
    live = LiveReport(run, rows, ledger, lambda counts: {"counts": counts}, interval_s=1e-9)
    assert live.tick()
    live.close()
    page = open(run.report, encoding="utf-8").read()
    assert live.writes == 1 and "live (rewritten during the run)" in page
    assert "<b>1</b> ok" in page and "<b>1</b> pending" in page
    assert "&lt;script&gt;" not in page and '"\\u003cscript\\u003ex' in page
