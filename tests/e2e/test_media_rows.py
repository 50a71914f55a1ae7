"""Rows that carry images (issue 16): image-to-video, first and last frame, mixed with text
rows in one manifest, on tiny local checkpoints of each WanImageToVideoPipeline variant,
through a real render on the local Ray. Pixels equal a plain diffusers call with
`load_image`; a file changed after validation fails its row, and the same command again
re-renders it under its new key; an image shared by two rows is fetched once per actor."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.compute as pc
import pytest

from pipeline.actor.renderer import to_uint8
from pipeline.cli import main
from pipeline.outputs.encode import frames_sha256
from tests.conftest import read_catalog, write_manifest
from tests.support.checkpoints import checkpoint_dir
from tests.support.media_files import png_rgb

SIZE, FRAMES, STEPS, GUIDANCE, THREADS = 32, 5, 2, 5.0, 2
FAMILIES = ("wan2.1-i2v", "wan2.1-flf2v", "wan2.2-i2v-a14b")
LAST = {"wan2.1-i2v": False, "wan2.1-flf2v": True, "wan2.2-i2v-a14b": True}
FLAGS = ("--batch-size", "2", "--threads", str(THREADS), "--no-progress")


def media_rows(images) -> list[dict]:
    common = dict(height=SIZE, width=SIZE, num_frames=FRAMES, num_inference_steps=STEPS)
    common["guidance_scale"] = GUIDANCE
    rows = [{"id": "text", "prompt": "a text row", "seed": 3, **common}]
    for name in FAMILIES:
        row = dict(id=name, prompt=f"{name}: a fox runs", seed=11, negative_prompt="")
        row |= dict(model=str(checkpoint_dir(name)), image=str(images["first"]), **common)
        if LAST[name]:
            row["last_image"] = images["last"].name  # relative: to the manifest's folder
        rows.append(row)
    # Same bytes at another location: the same request as the wan2.1-i2v row.
    rows.append({**rows[1], "id": "copy", "image": str(images["copy"])})
    return rows


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("media")
    images = {
        "first": png_rgb(tmp, SIZE, SIZE, "first.png"),
        "last": png_rgb(tmp, SIZE, SIZE, "last.png"),
    }
    images["last"].write_bytes(_shifted(images["last"]))
    images["copy"] = tmp / "elsewhere" / "same.png"
    images["copy"].parent.mkdir()
    shutil.copyfile(images["first"], images["copy"])
    rows = media_rows(images)
    manifest = write_manifest(tmp / "m.parquet", rows)
    out = tmp / "run"
    assert main(["render", str(manifest), "--out", str(out), *FLAGS]) == 0
    return tmp, manifest, out, images, read_catalog(out)


def _shifted(path) -> bytes:
    """Another image of the same size: the pattern rolled, so first != last."""
    from io import BytesIO

    from PIL import Image

    image = Image.open(path)
    pixels = np.roll(np.asarray(image), 7, axis=1)
    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def plain_frames(name: str, images, row: dict) -> np.ndarray:
    """`pipe(image=load_image(path), ...)` as a notebook user writes it, passing what the
    catalog records as applied (guidance_scale_2: the family's model-card default)."""
    import torch
    from diffusers import DiffusionPipeline
    from diffusers.utils import load_image

    torch.set_num_threads(THREADS)
    pipe = DiffusionPipeline.from_pretrained(str(checkpoint_dir(name)))
    pipe.set_progress_bar_config(disable=True)
    extra = {"last_image": load_image(str(images["last"]))} if LAST[name] else {}
    if row["guidance_scale_2"] is not None:
        extra["guidance_scale_2"] = row["guidance_scale_2"]
    frames = pipe(
        image=load_image(str(images["first"])),
        prompt=f"{name}: a fox runs",
        negative_prompt="",
        height=SIZE,
        width=SIZE,
        num_frames=FRAMES,
        num_inference_steps=STEPS,
        guidance_scale=GUIDANCE,
        generator=torch.Generator("cpu").manual_seed(11),
        output_type="np",
        **extra,
    ).frames[0]
    return to_uint8(frames)


def test_every_row_renders_and_records_its_media(rendered):
    _, _, _, images, catalog = rendered
    assert set(catalog["status"].to_pylist()) == {"ok"}
    rows = {r["id"]: r for r in catalog.to_pylist()}
    assert rows["text"]["image"] is None and rows["text"]["image_sha256"] is None
    assert rows["text"]["resize"] is None
    for name in FAMILIES:
        assert rows[name]["image"] == str(images["first"])
        assert rows[name]["resize"] == "crop"
        assert len(rows[name]["image_sha256"]) == 64
        if LAST[name]:  # a relative cell: resolved against the manifest's folder
            assert rows[name]["last_image"] == str(images["last"])
            assert rows[name]["last_image_sha256"] != rows[name]["image_sha256"]
    # The same bytes elsewhere: the same key, one clip.
    assert rows["copy"]["key"] == rows["wan2.1-i2v"]["key"]
    assert rows["copy"]["image"] == str(images["copy"])
    assert pc.count_distinct(catalog["key"]).as_py() == catalog.num_rows - 1


@pytest.mark.parametrize("name", FAMILIES)
def test_frames_equal_a_plain_diffusers_call_with_load_image(rendered, name):
    _, _, _, images, catalog = rendered
    row = catalog.filter(pc.equal(catalog["id"], name)).to_pylist()[0]
    assert row["frames_sha256"] == frames_sha256(plain_frames(name, images, row))


def test_changed_image_is_a_new_request_and_the_same_command_re_renders_it(rendered, tmp_path):
    *_, images, _ = rendered
    image = tmp_path / "frame.png"
    shutil.copyfile(images["first"], image)
    row = dict(id="i2v", prompt="a fox", seed=5, negative_prompt="", image=str(image))
    row |= dict(model=str(checkpoint_dir("wan2.1-i2v")), height=SIZE, width=SIZE)
    row |= dict(num_frames=FRAMES, num_inference_steps=STEPS)
    manifest = write_manifest(tmp_path / "m.parquet", [row])
    out = tmp_path / "run"
    assert main(["render", str(manifest), "--out", str(out), *FLAGS]) == 0
    before = read_catalog(out).to_pylist()[0]
    image.write_bytes(_shifted(image))  # same location, new bytes
    assert main(["render", str(manifest), "--out", str(out), *FLAGS]) == 0
    after = read_catalog(out).to_pylist()[0]
    assert after["status"] == "ok" and after["image"] == before["image"]
    assert after["key"] != before["key"]
    assert after["image_sha256"] != before["image_sha256"]
    assert after["frames_sha256"] != before["frames_sha256"]
    assert json.loads((out / "summary.json").read_text())["rendered_this_run"] == 1


def test_inputs_are_kept_exported_shown_and_verified_with_their_clip(rendered, tmp_path, capsys):
    import tarfile

    from diffusers.utils import load_image
    from PIL import Image

    from pipeline.rundir.layout import input_relpath

    _, _, out, images, catalog = rendered
    rows = {r["id"]: r for r in catalog.to_pylist()}
    flf2v = rows["wan2.1-flf2v"]
    for name, source in (("image", images["first"]), ("last_image", images["last"])):
        kept = np.asarray(Image.open(out / input_relpath(flf2v["key"], name)))
        assert np.array_equal(kept, np.asarray(load_image(str(source))))  # as the model got it
    assert not (out / input_relpath(rows["text"]["key"], "image")).exists()

    assert (
        main(["export", str(out), "--to", "webdataset", str(tmp_path / "wds"), "--no-progress"])
        == 0
    )
    with tarfile.open(tmp_path / "wds" / "00000.tar") as tar:
        members = tar.getnames()
        samples = {
            json.loads(tar.extractfile(m).read())["id"]: m.split(".")[0]
            for m in members
            if m.endswith(".json")
        }
    assert f"{samples['wan2.1-flf2v']}.last_image.png" in members
    assert f"{samples['wan2.1-i2v']}.image.png" in members
    assert not any(m.startswith(samples["text"] + ".image") for m in members)

    assert main(["export", str(out), "--to", "hf", str(tmp_path / "hf"), "--no-progress"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "hf" / "metadata.jsonl").read_text().splitlines()]
    by_id = {line["id"]: line for line in lines}
    kept = tmp_path / "hf" / by_id["wan2.1-flf2v"]["last_image_file_name"]
    assert kept.read_bytes() == (out / input_relpath(flf2v["key"], "last_image")).read_bytes()
    assert "image_file_name" not in by_id["text"]

    assert (
        main(["export", str(out), "--to", "files", str(tmp_path / "files"), "--no-progress"]) == 0
    )
    index = (tmp_path / "files" / "index.csv").read_text().splitlines()
    assert index[0].endswith(",image_file_name,last_image_file_name")
    sibling = next(line for line in index if ",wan2.1-flf2v," in line).split(",")[-1]
    assert (tmp_path / "files" / sibling).is_file() and sibling.endswith(".last_image.png")

    page = (out / "report.html").read_text()
    assert '"inputs_dir": "inputs"' in page or '"inputs_dir":"inputs"' in page

    capsys.readouterr()
    # verify re-renders media rows too (fetching and hash-checking their images again).
    assert main(["verify", str(out), "--sample", str(catalog.num_rows)]) == 0
    said = capsys.readouterr().out
    assert f"re-rendered {catalog.num_rows} and compared frames_sha256: 0 problem(s)" in said
