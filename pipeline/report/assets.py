"""The page's inline style and script. The script builds the contact sheet, one page of
cards at a time, from the JSON rows with DOM calls and textContent only (never innerHTML),
so a prompt is always text."""

from __future__ import annotations

CARDS_PER_PAGE = 120

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 24px 48px;color:#222;background:#fafafa}
h1{font-size:22px;margin:16px 0 4px} h2{font-size:17px;margin:28px 0 8px}
.meta{color:#666} .counts span{display:inline-block;margin-right:14px}
.ok{color:#17692f} .failed{color:#b3261e} .pending{color:#8a6d00} .flag{color:#9a5b00}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top;max-width:48em;overflow-wrap:anywhere}
th{background:#f0f0f0;white-space:nowrap} .ids{font-family:ui-monospace,monospace;font-size:12px}
.bar{display:flex;gap:8px;align-items:center;margin:8px 0;flex-wrap:wrap}
.bar button{font:inherit;padding:2px 10px;border:1px solid #bbb;background:#fff;cursor:pointer}
.bar button[aria-pressed=true]{background:#333;color:#fff}
#sheet{display:grid;grid-template-columns:repeat(auto-fill,172px);gap:8px}
.card{margin:0;width:172px;background:#fff;border:1px solid #ddd;border-radius:4px;
overflow:hidden} .card.st-failed{border-color:#e6a39e} .card.flagged{outline:2px solid #e0a800}
.input{width:48px;height:48px;object-fit:contain;float:left;margin:4px;background:#222}
.thumb{display:flex;width:172px;height:160px;align-items:center;justify-content:center;
background:#222;color:#bbb} .thumb img{width:160px;height:160px;object-fit:contain}
figcaption{padding:4px 6px;font-size:12px}
.cid{font-weight:600;display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.prompt{display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden;
unicode-bidi:isolate;overflow-wrap:anywhere}
.tag{display:inline-block;margin-right:6px} .kept{color:#17692f;font-weight:600}
.card.kept{outline:2px solid #2e9b4f} .score{color:#444}
.sound{font:inherit;border:1px solid #bbb;background:#fff;cursor:pointer;padding:0 6px}
.thumb video{width:172px;height:160px;background:#000}
.chart rect{fill:#4a7bd0} .chart .axis{stroke:#888} .chart text{font-size:11px;fill:#555}
pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;max-height:24em}
bdi{unicode-bidi:isolate}
"""

SCRIPT = r"""
"use strict";
(function () {
  const PAGE = @PAGE@;
  const data = JSON.parse(document.getElementById("rows").textContent);
  const STATUS = { o: "ok", f: "failed", p: "pending" };
  const sheet = document.getElementById("sheet");
  const info = document.getElementById("pageinfo");
  const all = data.id.map((_, i) => i);
  const kept = new Set(data.kept);  // best of N: the selected variants
  let shown = all, page = 0;
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function card(i) {
    const id = data.id[i], prompt = data.prompt[i], seed = data.seed[i], key = data.key[i];
    const status = STATUS[data.status[i]], flags = data.flags[i] || "", error = data.error[i];
    const fig = el("figure", "card st-" + status + (flags ? " flagged" : ""));
    fig.title = id + "\nseed " + seed + " \u00b7 " + status +
      (flags ? " \u00b7 QC: " + flags : "") + (error ? "\n" + error : "") + "\n" + prompt;
    // Relative paths (keys are hex), as pipeline/rundir/layout.py lays them out.
    const shard = "/" + key.slice(0, 2) + "/" + key;
    const box = el(status === "ok" ? "a" : "div", "thumb");
    if (status === "ok") {
      box.href = data.clips_dir + shard + "." + data.ext;
      const img = el("img");
      img.src = data.thumbs_dir + shard + "." + data.thumb_ext;
      img.alt = "";
      box.appendChild(img);
    } else {
      box.textContent = status;
    }
    const cap = el("figcaption");
    cap.appendChild(el("bdi", "cid", id));
    cap.appendChild(el("span", "tag", "seed " + seed));
    cap.appendChild(el("span", "tag " + status, status));
    if (flags) cap.appendChild(el("span", "tag flag", "QC: " + flags));
    if (i in data.variant) cap.appendChild(el("span", "tag", "variant " + data.variant[i]));
    if (i in data.scores) cap.appendChild(el("span", "tag score", data.scores[i]));
    if (kept.has(i)) { fig.classList.add("kept"); cap.appendChild(el("span", "tag kept", "kept")); }
    if (i in data.sound) {  // the clip has sound: play it here, with its sound
      const play = el("button", "tag sound", "\u25b6 sound " + data.sound[i]);
      play.addEventListener("click", () => {
        const video = el("video");
        video.src = data.clips_dir + shard + "." + data.ext;
        video.controls = true;
        video.autoplay = true;
        const player = el("div", "thumb");  // not inside the link: its controls stay usable
        player.appendChild(video);
        box.replaceWith(player);
        play.remove();
      });
      cap.appendChild(play);
    }
    cap.appendChild(el("bdi", "prompt", prompt));
    for (const name of data.inputs[i] || []) {  // media rows: the image(s) the clip came from
      const input = el("img", "input");
      input.src = data.inputs_dir + shard + "." + name + "." + data.input_ext;
      input.alt = name;
      input.title = name + " (as the model got it)";
      fig.appendChild(input);
    }
    fig.append(box, cap);
    return fig;
  }
  function draw() {
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    const part = document.createDocumentFragment();
    for (const i of shown.slice(page * PAGE, (page + 1) * PAGE)) part.appendChild(card(i));
    sheet.replaceChildren(part);
    info.textContent = "page " + (page + 1) + " of " + pages + " \u00b7 " +
      shown.length + " rows" + (data.total > all.length
        ? " (a sample of the run's " + data.total + "; catalog.parquet has every row)" : "");
  }
  const tests = {
    ok: (i) => data.status[i] === "o", failed: (i) => data.status[i] === "f",
    pending: (i) => data.status[i] === "p", flagged: (i) => i in data.flags,
    kept: (i) => kept.has(i),
  };
  for (const button of document.querySelectorAll("[data-filter]")) {
    button.addEventListener("click", () => {
      for (const b of document.querySelectorAll("[data-filter]")) b.ariaPressed = "false";
      button.ariaPressed = "true";
      const test = tests[button.dataset.filter];
      shown = test ? all.filter(test) : all;
      page = 0;
      draw();
    });
  }
  document.getElementById("prev").addEventListener("click", () => { page--; draw(); });
  document.getElementById("next").addEventListener("click", () => { page++; draw(); });
  draw();
})();
""".replace("@PAGE@", str(CARDS_PER_PAGE))
