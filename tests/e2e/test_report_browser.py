"""report.html in a real headless Chromium (Debian `chromium`, driven by Playwright; no
browser download): thumbnails load, nothing is fetched outside the run dir, no console
error, hostile prompts stay text, the contact sheet pages and filters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.report.assets import CARDS_PER_PAGE
from pipeline.report.data import clean
from tests.support.report_fixture import HOSTILE, make_run_dir

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALL_IMAGES_SETTLED = """() => Promise.all([...document.images].map((img) => img.complete
    ? null : new Promise((done) => { img.onload = img.onerror = done; })))"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "headless tests need Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Visit:
    """One page load with everything it logged and requested."""

    def __init__(self, browser, report: Path):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors, self.requests, self.dialogs = [], [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(report.as_uri(), wait_until="load")
        self.settle()

    def settle(self):
        self.page.evaluate(ALL_IMAGES_SETTLED)

    def images(self) -> list[int]:
        return self.page.evaluate("[...document.images].map((img) => img.naturalWidth)")

    def texts(self, selector: str) -> list[str]:
        return self.page.eval_on_selector_all(selector, "(els) => els.map((e) => e.textContent)")


def test_report_in_chromium(browser, tmp_path):
    run, catalog = make_run_dir(tmp_path / "run", 300)
    visit = Visit(browser, Path(run.report))
    shot = tmp_path / "report.png"
    visit.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    assert visit.errors == [] and visit.dialogs == []
    root = Path(run.root).as_uri() + "/"
    assert visit.requests and all(url.startswith(root) for url in visit.requests), visit.requests
    ok_on_page = catalog["status"].to_pylist()[:CARDS_PER_PAGE].count("ok")
    widths = visit.images()
    assert len(widths) == ok_on_page and all(w > 0 for w in widths)
    assert visit.page.evaluate("document.scripts.length") == 2  # no prompt added one
    links = visit.page.eval_on_selector_all("a.thumb", "(els) => els.map((a) => a.href)")
    assert len(links) == ok_on_page
    assert all(link.startswith(root + "clips/") and link.endswith(".mp4") for link in links)

    prompts = visit.texts(".card .prompt")
    assert len(prompts) == CARDS_PER_PAGE
    for hostile in HOSTILE:  # each renders as the literal text (control chars as U+FFFD)
        assert f"{clean(hostile)} number {HOSTILE.index(hostile)}" in prompts
    ids = visit.texts(".card .cid")
    assert "<script>alert('pwned')</script>-0" in ids
    title = visit.page.get_attribute(".card >> nth=0", "title")
    assert (
        "<script>alert('pwned')</script> number 0" in title and "seed 18446744073709551615" in title
    )

    visit.page.click("[data-filter=failed]")
    failed = catalog["status"].to_pylist().count("failed")
    assert visit.texts("#pageinfo") == [f"page 1 of 1 · {failed} rows"]
    assert visit.page.eval_on_selector_all(
        ".card", "(els) => els.every((e) => e.classList.contains('st-failed'))"
    )
    visit.page.click("[data-filter=all]")
    visit.page.click("#next")
    visit.settle()
    assert visit.texts("#pageinfo") == ["page 2 of 3 · 300 rows"]
    assert all(w > 0 for w in visit.images()) and visit.errors == []


def test_a_100k_row_report_opens_with_one_page_of_cards(browser, tmp_path):
    """The page embeds all rows as JSON and draws 120 cards at a time (the open time is
    measured by bench/report_open.py, not asserted here)."""
    run, _ = make_run_dir(tmp_path / "run", 100_000, thumbs_for=2 * CARDS_PER_PAGE)
    visit = Visit(browser, Path(run.report))
    assert visit.texts("#pageinfo") == ["page 1 of 834 · 100000 rows"]
    assert len(visit.texts(".card")) == CARDS_PER_PAGE
    assert all(w > 0 for w in visit.images())
    visit.page.click("#next")
    visit.settle()
    assert all(w > 0 for w in visit.images()) and len(visit.images()) > 90
    assert visit.errors == [] and visit.dialogs == []
