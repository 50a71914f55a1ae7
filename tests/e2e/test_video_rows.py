"""Video-to-video rows (issue 16): a row giving a `video` to a Wan text-to-video checkpoint
renders through WanVideoToVideoPipeline on the same weights (its model spec gains `#v2v`),
from the first num_frames frames of its video, and its frames equal a plain diffusers call
`WanVideoToVideoPipeline.from_pretrained(<checkpoint>)(video=load_video(path)[:n], ...)`.
A text row of the same checkpoint in the same manifest stays text-to-video."""

from __future__ import annotations

import hashlib
import io

import pyarrow.compute as pc
import pytest
from PIL import Image

from pipeline.actor.renderer import to_uint8
from pipeline.cli import main
from pipeline.models import VIDEO_TASK
from pipeline.outputs.encode import frames_sha256
from pipeline.rundir.layout import RunDir
from tests.conftest import read_catalog, write_manifest
from tests.support.checkpoints import checkpoint_dir
from tests.support.media_files import gif_video, video_file

THREADS, STEPS, SEED = 2, 2, 5
PROMPT = "a fox runs through snow"
SHAPE = dict(height=32, width=32, num_inference_steps=STEPS)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("video-rows")
    videos = {"mp4": video_file(tmp, frames=9), "gif": gif_video(tmp, frames=7)}
    model = str(checkpoint_dir("wan2.1"))
    base = dict(prompt=PROMPT, seed=SEED, model=model, **SHAPE)
    rows = [
        dict(base, id="mp4", video=str(videos["mp4"]), num_frames=5, strength=0.75),
        dict(base, id="gif", video=str(videos["gif"])),  # num_frames from the video: 5 of 7
        dict(base, id="text", num_frames=5),
    ]
    out = tmp / "run"
    manifest = write_manifest(tmp / "m.parquet", rows)
    code = main(["render", str(manifest), "--out", str(out), "--threads", str(THREADS)])
    return code, out, videos, model


def by_id(catalog, row_id: str) -> dict:
    return catalog.filter(pc.equal(catalog["id"], row_id)).to_pylist()[0]


def plain_frames(model: str, path, row: dict):
    """The notebook call, with what the catalog records as applied (negative prompt,
    guidance, strength) and load_video's frames converted to RGB."""
    import torch
    from diffusers import WanVideoToVideoPipeline
    from diffusers.utils import load_video

    torch.set_num_threads(THREADS)
    pipe = WanVideoToVideoPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    video = load_video(str(path), convert_method=lambda fs: [f.convert("RGB") for f in fs])
    frames = pipe(
        video=video[: row["num_frames"]],
        prompt=PROMPT,
        negative_prompt=row["negative_prompt"],
        height=row["height"],
        width=row["width"],
        num_inference_steps=STEPS,
        guidance_scale=row["guidance_scale"],
        strength=row["strength"],
        generator=torch.Generator("cpu").manual_seed(SEED),
        output_type="np",
    ).frames[0]
    return to_uint8(frames)


def test_video_rows_render_with_their_video_recorded(rendered):
    code, out, videos, model = rendered
    catalog = read_catalog(out)
    assert code == 0 and catalog["status"].to_pylist() == ["ok"] * 3
    for name in ("mp4", "gif"):
        row = by_id(catalog, name)
        assert row["model"] == model + VIDEO_TASK
        assert row["video"] == str(videos[name])
        assert row["video_sha256"] == hashlib.sha256(videos[name].read_bytes()).hexdigest()
        run = RunDir(str(out))  # the video's first frame as the model got it
        poster = Image.open(io.BytesIO(run.read_bytes(run.input_path(row["key"], "video"))))
        assert (poster.format, poster.size) == ("PNG", (32, 32))
    assert by_id(catalog, "mp4")["strength"] == 0.75
    assert by_id(catalog, "gif")["strength"] == 0.8  # the default, recorded as applied
    assert by_id(catalog, "gif")["num_frames"] == 5  # the most 7 frames cover (4k+1)
    text = by_id(catalog, "text")
    assert text["model"] == model and text["video"] is None and text["strength"] is None


@pytest.mark.parametrize("name", ["mp4", "gif"])
def test_frames_equal_a_plain_video_to_video_call(rendered, name):
    _, out, videos, model = rendered
    row = by_id(read_catalog(out), name)
    assert row["frames_sha256"] == frames_sha256(plain_frames(model, videos[name], row))
