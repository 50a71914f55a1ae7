"""report.html in a real headless Chromium (Debian `chromium`, driven by Playwright; no
browser download): thumbnails load, nothing is fetched outside the run dir, no console
error, hostile prompts stay text, the contact sheet pages and filters."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.outputs.thumbnail import make_thumbnail
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


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_a_clip_with_sound_plays_in_place_with_its_sound(browser, tmp_path, fmt):
    """A row whose clip carries sound (LTX-2) gets a "sound" button; a click swaps the
    thumbnail for the clip itself, playing unmuted, and Chromium decodes its audio track
    (AAC in mp4, Opus in webm). The page's CSP lets clips from the run dir play."""
    from pipeline.config import EncodeSettings
    from pipeline.outputs.audio import Audio
    from pipeline.outputs.encode import encode_clip
    from pipeline.report import write_report
    from pipeline.rundir.layout import RunDir

    run = RunDir(str(tmp_path / "run"))
    keys = [hashlib.sha256(name.encode()).hexdigest()[:32] for name in ("loud", "quiet")]
    frames = np.random.default_rng(1).integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    t = np.arange(24000) / 24000
    sound = Audio.of(0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32), 24000)
    clips = {keys[0]: (frames, sound), keys[1]: (frames, None)}
    for key, (clip, audio) in clips.items():
        run.write(
            run.clip_path(key, fmt), encode_clip(clip, 24.0, EncodeSettings(fmt), audio=audio)
        )
        run.write(run.thumb_path(key), make_thumbnail(clip, 24.0))
    catalog = pa.table(
        {
            "id": ["loud", "quiet"],
            "key": keys,
            "prompt": ["a bell rings", "a silent film"],
            "seed": pa.array([1, 2], pa.uint64()),
            "status": ["ok", "ok"],
            "error": [None, None],
            "finished_at": ["2026-12-07T10:00:00.000+00:00"] * 2,
            "audio_sha256": [sound.sha256(), None],
            "audio_duration_s": [1.0, None],
        }
    )
    context = {"counts": {"ok": 2}, "encode": {"format": fmt}, "render": {}}
    write_report(run, catalog, context)
    visit = Visit(browser, Path(run.report))
    buttons = visit.page.locator("button.sound")
    assert buttons.count() == 1 and "1.00 s" in buttons.inner_text()
    buttons.click()
    video = visit.page.locator("video")
    assert video.count() == 1 and video.get_attribute("src").endswith(f"{keys[0]}.{fmt}")
    # an explicit condition (the media pipeline's own progress), not a sleep
    visit.page.wait_for_function(
        "() => { const v = document.querySelector('video');"
        " return v && v.currentTime > 0.3 && v.webkitAudioDecodedByteCount > 0; }",
        timeout=20_000,
    )
    assert visit.page.evaluate("document.querySelector('video').muted") is False
    assert visit.page.locator("a.thumb").count() == 1  # the other card keeps its thumbnail
    assert visit.errors == [] and visit.dialogs == []
