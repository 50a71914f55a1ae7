"""The 2026 families end to end (issue 19): each text-to-video tiny checkpoint of
tests/support/new_families in one mixed manifest through `promptreel render` (Ray, real
ffmpeg), LTX-2's sound kept in the clip, the catalog, the report and the exports, then a
resume that renders nothing. Pixel parity with plain diffusers, per family, is in
tests/unit/test_family_*.py; here the Ray path gives what the in-process renderer gives."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile

import numpy as np
import pytest

from pipeline.actor.renderer import Renderer
from pipeline.cli import main
from pipeline.config import RenderSettings
from pipeline.models import resolve_model
from pipeline.outputs.encode import decode_clip, ffmpeg_exe, frames_sha256
from pipeline.plan.batches import Batch, Item
from pipeline.schema import ITEM_FIELDS
from tests.conftest import read_catalog, write_manifest
from tests.support.new_families import cases, checkpoint_dir
from tests.support.runs import clip_files

# The text-to-video cases (media rows are the unit tests' business), but the slow
# NABLA and 720p ones; LTX-2 twice, at two frame rates (fps is its call's frame_rate).
NAMES = ("ltx2", "hunyuan1.5", "skyreels-v2", "skyreels-v2-df", "cosmos2.5", "kandinsky5")
NAMES += ("sana-video",)
FLAGS = ("--batch-size", "1", "--threads", "1", "--actors", "1", "--no-progress")


def rows() -> list[dict]:
    found = []
    for name in NAMES:
        case = cases()[name]
        base = dict(model=str(checkpoint_dir(name)), num_inference_steps=case.steps, **case.shape)
        found.append(
            {
                "id": name,
                "prompt": f"{name}: a bell rings at dusk",
                "seed": str(2**64 - 1 - len(found)),
            }
            | base
            | {"negative_prompt": "blurry, static"}
            | case.with_negative
        )
    ltx = dict(found[0], id="ltx2-25fps", fps=25.0, seed="5", prompt="a drum, 25 fps")
    return [*found, ltx]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("families-2026")
    manifest = write_manifest(tmp / "m.parquet", rows())
    args = ["render", str(manifest), "--out", str(tmp / "run"), *FLAGS]
    return tmp, manifest, main(args)


def played(path, stream: str) -> float | None:
    """How long ffmpeg decodes the clip's video ("v") or audio ("a") stream for (None: no
    such stream)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", f"0:{stream}", "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    times = re.findall(r"time=(\d+):(\d+):([\d.]+)", out.stderr)
    if out.returncode or not times:
        return None
    hours, minutes, seconds = times[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def audio_codec(path) -> str | None:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True)
    found = re.search(r"Audio: (\w+)", out.stderr.decode())
    return found.group(1) if found else None


def test_the_new_families_render_in_one_mixed_run(mixed):
    tmp, _, code = mixed
    assert code == 0
    catalog = read_catalog(tmp / "run").to_pylist()
    assert [r["id"] for r in catalog] == [r["id"] for r in rows()]
    assert {r["status"] for r in catalog} == {"ok"}
    detected = {r["id"]: resolve_model(r["model"]).family.name for r in catalog}
    assert {detected[name] for name in NAMES} == {cases()[name].family for name in NAMES}
    for row in catalog:
        frames = decode_clip((tmp / "run" / row["uri"].split("/run/", 1)[1]).read_bytes())
        assert frames.shape == (row["num_frames"], row["height"], row["width"], 3), row["id"]


def test_ltx2_clips_carry_their_sound_and_the_catalog_describes_it(mixed):
    tmp, _, _ = mixed
    catalog = {r["id"]: r for r in read_catalog(tmp / "run").to_pylist()}
    for row in catalog.values():
        loud = row["id"].startswith("ltx2")
        assert (row["audio_sha256"] is not None) == loud, row["id"]
        if not loud:
            assert row["qc_audio_rms_dbfs"] is None
            continue
        assert row["audio_channels"] == 2 and row["audio_sample_rate"] > 0
        video_s = row["num_frames"] / row["fps"]
        assert row["audio_duration_s"] == pytest.approx(video_s, abs=1 / row["fps"])
        clip = tmp / "run" / row["uri"].split("/run/", 1)[1]
        assert audio_codec(clip) == "aac"
        assert abs(played(clip, "a") - played(clip, "v")) <= 1 / row["fps"]
    # fps is the call's frame_rate: the two LTX-2 rows differ in sound length and pixels
    assert catalog["ltx2"]["audio_duration_s"] != catalog["ltx2-25fps"]["audio_duration_s"]


def test_the_ray_path_renders_the_in_process_frames_and_sound(mixed):
    tmp, _, _ = mixed
    row = next(r for r in read_catalog(tmp / "run").to_pylist() if r["id"] == "ltx2-25fps")
    renderer = Renderer(row["model"], RenderSettings(model=row["model"], batch_size=1, threads=1))
    clip = renderer.render_clips(Batch((Item.from_record({n: row[n] for n in ITEM_FIELDS}),), 1))
    assert frames_sha256(clip[0].frames) == row["frames_sha256"]
    assert clip[0].audio.sha256() == row["audio_sha256"]


def test_the_report_plays_sound_and_the_exports_keep_it(mixed):
    """report.html offers the two LTX-2 clips' sound; webdataset and hf exports copy the
    clips with their AAC track and carry the audio columns."""
    tmp, _, _ = mixed
    html = (tmp / "run" / "report.html").read_text()
    data = json.loads(re.search(r'<script[^>]*id="rows"[^>]*>(.*?)</script>', html, re.S).group(1))
    ids = data["id"]
    assert sorted(ids[int(i)] for i in data["sound"]) == ["ltx2", "ltx2-25fps"]
    dest = tmp / "wds"
    assert main(["export", str(tmp / "run"), "--to", "webdataset", str(dest), "--no-progress"]) == 0
    members = {}
    for shard in sorted(dest.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                members[member.name] = tar.extractfile(member).read()
    metadata = [json.loads(v) for k, v in members.items() if k.endswith(".json")]
    loud = [m for m in metadata if m.get("audio_sha256")]
    assert sorted(m["id"] for m in loud) == ["ltx2", "ltx2-25fps"]
    with_sound = 0
    for name, data_ in members.items():
        if name.endswith(".mp4"):
            (tmp / "exported.mp4").write_bytes(data_)
            with_sound += audio_codec(tmp / "exported.mp4") == "aac"
    assert with_sound == 2
    hf = tmp / "hf"
    assert main(["export", str(tmp / "run"), "--to", "hf", str(hf), "--no-progress"]) == 0
    lines = [json.loads(x) for x in (hf / "metadata.jsonl").read_text().splitlines()]
    loud = {x["id"]: x for x in lines if x.get("audio_sha256")}
    assert sorted(loud) == ["ltx2", "ltx2-25fps"]
    assert all(audio_codec(hf / x["file_name"]) == "aac" for x in loud.values())


def test_the_same_command_again_renders_nothing(mixed):
    tmp, manifest, _ = mixed
    before = clip_files(tmp / "run")
    assert main(["render", str(manifest), "--out", str(tmp / "run"), *FLAGS]) == 0
    assert clip_files(tmp / "run") == before


def test_formats_without_sound_are_refused_unless_it_is_dropped(mixed, tmp_path):
    tmp, _, _ = mixed
    ltx = [r for r in rows() if r["id"] == "ltx2"]
    manifest = write_manifest(tmp_path / "m.parquet", ltx)
    out = tmp_path / "gif"
    args = ["render", str(manifest), "--out", str(out), *FLAGS, "--format", "gif"]
    assert main(args) == 2
    assert not (out / "clips").exists()
    assert main([*args, "--no-audio"]) == 0
    row = read_catalog(out).to_pylist()[0]
    assert row["status"] == "ok" and row["audio_sha256"] is None
    assert json.loads((out / "job.json").read_text())["encode"]["audio"] is False
    frames = decode_clip((out / row["uri"].split("/gif/", 1)[1]).read_bytes())
    assert frames.shape[0] == row["num_frames"] and np.asarray(frames).dtype == np.uint8
