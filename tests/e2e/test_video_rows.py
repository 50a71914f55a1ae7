"""Video-to-video rows (issue 16): a row giving a `video` to a Wan (or CogVideoX) text-to-video
checkpoint renders through WanVideoToVideoPipeline (CogVideoXVideoToVideoPipeline) on the
same weights (its model spec gains `#v2v`), from the first num_frames frames of its video,
and its frames equal a plain diffusers call
`WanVideoToVideoPipeline.from_pretrained(<checkpoint>)(video=load_video(path)[:n], ...)`.
A text row of the same checkpoint in the same manifest stays text-to-video; `verify`
re-renders video rows. LTXConditionPipeline takes one condition per row, an `image` or a
`video` at `frame_index` with `strength`, and its text rows keep both null (their keys do
not move); each equals `pipe(image=load_image(path) | video=load_video(path), ...)`. A Wan
2.2 TI2V-5B checkpoint given an `image` renders through WanImageToVideoPipeline (`#i2v`).
A Wan VACE checkpoint takes a control `video` and an optional `mask` video, frame for frame
with the clip. The run is scored (`--score motion`) and one video row carries a LoRA: media
rows, adapters and scores together (issues 16, 17, 18)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pyarrow.compute as pc
import pytest
from PIL import Image

from pipeline.actor.renderer import to_uint8
from pipeline.cli import main
from pipeline.models import IMAGE_TASK, VIDEO_TASK, resolve_model
from pipeline.outputs.encode import frames_sha256
from pipeline.rundir.layout import RunDir
from tests.conftest import read_catalog, write_manifest
from tests.support.checkpoints import checkpoint_dir
from tests.support.lora_files import write_wan_lora
from tests.support.media_files import gif_video, mask_video, png_rgb, video_file

THREADS, STEPS, SEED = 2, 2, 5
PROMPT = "a fox runs through snow"
SHAPE = dict(height=32, width=32, num_inference_steps=STEPS)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("video-rows")
    videos = {"mp4": video_file(tmp, frames=9), "gif": gif_video(tmp, frames=7)}
    videos["cogvideox"] = video_file(tmp, width=16, height=16, frames=10, name="cog.mp4")
    model = str(checkpoint_dir("wan2.1"))
    lora = write_wan_lora(tmp / "fox.safetensors", seed=1)
    base = dict(prompt=PROMPT, seed=SEED, model=model, **SHAPE)
    rows = [
        dict(base, id="mp4", video=str(videos["mp4"]), num_frames=5, strength=0.75),
        # num_frames from the video (5 of 7), and a LoRA on the video-to-video pipeline
        dict(base, id="gif", video=str(videos["gif"]), lora=str(lora)),
        dict(base, id="text", num_frames=5),
        # CogVideoX: 8k+1 frames, so 9 of the 10 (its tiny checkpoint's size: 16x16)
        dict(base, id="cogvideox", video=str(videos["cogvideox"]), height=16, width=16),
    ]
    rows[-1]["model"] = str(checkpoint_dir("cogvideox"))
    # LTX conditions (sides 32k, frames 8k+1): an image on the last frame, a video from the
    # first frame (its 9 frames fill the first 9 of 17), and a text row.
    videos["ltx-image"] = png_rgb(tmp, 32, 32, "ltx.png")
    videos["ltx-video"] = videos["mp4"]
    ltx = dict(base, model=str(checkpoint_dir("ltx-condition")), num_frames=9)
    rows += [
        dict(ltx, id="ltx-image", image=str(videos["ltx-image"]), frame_index=8),
        dict(ltx, id="ltx-video", video=str(videos["mp4"]), num_frames=17, strength=0.6),
        dict(ltx, id="ltx-text"),
    ]
    videos["ti2v"] = videos["ltx-image"]  # TI2V-5B: sides 32k
    ti2v = str(checkpoint_dir("wan2.2-ti2v"))
    rows.append(dict(base, id="ti2v", model=ti2v, image=str(videos["ti2v"]), num_frames=5))
    vace = dict(base, model=str(checkpoint_dir("wan-vace")), video=str(videos["mp4"]))
    gif_first = png_rgb(tmp, 48, 24, "wide.png")  # the pipeline resizes references itself
    videos["vace"] = videos["vace-video"] = videos["mp4"]
    rows += [
        dict(vace, id="vace", mask=str(mask_video(tmp)), num_frames=5, conditioning_scale=0.7),
        dict(vace, id="vace-video"),  # num_frames from the video: all 9
        dict(
            vace,
            id="vace-refs",
            num_frames=5,
            reference_images=[str(videos["ltx-image"]), str(gif_first)],
        ),
    ]
    out = tmp / "run"
    manifest = write_manifest(tmp / "m.parquet", rows)
    args = ["render", str(manifest), "--out", str(out), "--threads", str(THREADS)]
    code = main([*args, "--score", "motion"])
    return code, out, videos


def by_id(catalog, row_id: str) -> dict:
    return catalog.filter(pc.equal(catalog["id"], row_id)).to_pylist()[0]


def plain_frames(row: dict):
    """The notebook call on the row's recorded media, with what the catalog records as
    applied (negative prompt, guidance, family parameters) and load_video's frames converted
    to RGB; a clip that follows its videos frame for frame gets their first num_frames
    frames (video-to-video's call takes no num_frames)."""
    import diffusers
    import torch
    from diffusers.utils import load_image, load_video

    torch.set_num_threads(THREADS)
    family = resolve_model(row["model"]).family
    model = row["model"].removesuffix(VIDEO_TASK).removesuffix(IMAGE_TASK)
    pipe = getattr(diffusers, family.pipeline_classes[0]).from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    kwargs = {p: row[p] for p in family.param_names if row[p] is not None}
    if row["image"] is not None:
        kwargs["image"] = load_image(row["image"])
    for adapter in json.loads(row["lora"] or "[]"):
        pipe.load_lora_weights(adapter["uri"], adapter_name="a")
        pipe.set_adapters(["a"], adapter_weights=[adapter["scale"]])
    if row["reference_images"] is not None:
        references = json.loads(row["reference_images"])
        kwargs["reference_images"] = [load_image(entry["uri"]) for entry in references]
    for column in ("video", "mask"):
        if row[column] is not None:
            rgb = load_video(row[column], convert_method=lambda fs: [f.convert("RGB") for f in fs])
            kwargs[column] = rgb[: row["num_frames"]] if family.frames_from_video else rgb
    if family.call_num_frames:
        kwargs["num_frames"] = row["num_frames"]
    frames = pipe(
        prompt=PROMPT,
        negative_prompt=row["negative_prompt"],
        height=row["height"],
        width=row["width"],
        num_inference_steps=STEPS,
        guidance_scale=row["guidance_scale"],
        generator=torch.Generator("cpu").manual_seed(SEED),
        output_type="np",
        **kwargs,
    ).frames[0]
    return to_uint8(frames)


def test_video_rows_render_with_their_video_recorded(rendered):
    code, out, videos = rendered
    catalog = read_catalog(out)
    assert code == 0 and catalog["status"].to_pylist() == ["ok"] * 11
    for name in ("mp4", "gif", "cogvideox"):
        row = by_id(catalog, name)
        assert row["model"].endswith(VIDEO_TASK)
        family = "cogvideox-v2v" if name == "cogvideox" else "wan2.1-v2v"
        assert resolve_model(row["model"]).family.name == family
        assert row["video"] == str(videos[name])
        assert row["video_sha256"] == hashlib.sha256(videos[name].read_bytes()).hexdigest()
        run = RunDir(str(out))  # the video's first frame as the model got it
        poster = Image.open(io.BytesIO(run.read_bytes(run.input_path(row["key"], "video"))))
        assert (poster.format, poster.size) == ("PNG", (row["width"], row["height"]))
    assert by_id(catalog, "mp4")["strength"] == 0.75
    assert by_id(catalog, "gif")["strength"] == 0.8  # the default, recorded as applied
    assert by_id(catalog, "gif")["num_frames"] == 5  # the most 7 frames cover (4k+1)
    assert by_id(catalog, "cogvideox")["num_frames"] == 9  # 8k+1 within 10
    assert json.loads(by_id(catalog, "gif")["lora"])[0]["uri"].endswith("fox.safetensors")
    assert catalog["score_motion"].null_count == 0  # every row scored in the same job
    text = by_id(catalog, "text")
    assert text["model"] == str(checkpoint_dir("wan2.1")) and text["video"] is None
    assert text["strength"] is None


@pytest.mark.parametrize(
    "name",
    [
        "mp4",
        "gif",
        "cogvideox",
        "ltx-image",
        "ltx-video",
        "ti2v",
        "vace",
        "vace-video",
        "vace-refs",
    ],
)
def test_frames_equal_a_plain_diffusers_call(rendered, name):
    _, out, _ = rendered
    row = by_id(read_catalog(out), name)
    assert row["frames_sha256"] == frames_sha256(plain_frames(row))


def test_verify_re_renders_video_rows(rendered, capsys):
    _, out, _ = rendered
    # Evenly spaced: mp4 (video-to-video), text, the LTX image condition, LTX text, VACE.
    assert main(["verify", str(out), "--sample", "5"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out


def test_ltx_conditions_are_recorded_and_text_rows_keep_them_null(rendered):
    _, out, videos = rendered
    catalog = read_catalog(out)
    image, video, text = (by_id(catalog, f"ltx-{n}") for n in ("image", "video", "text"))
    assert (image["frame_index"], image["strength"]) == (8, 1.0)  # strength: the default
    assert image["image_sha256"] == hashlib.sha256(videos["ltx-image"].read_bytes()).hexdigest()
    assert (video["frame_index"], video["strength"], video["num_frames"]) == (0, 0.6, 17)
    assert video["model"] == text["model"] == str(checkpoint_dir("ltx-condition"))
    assert (text["frame_index"], text["strength"], text["image"], text["video"]) == (None,) * 4


def test_ti2v_given_an_image_renders_as_image_to_video(rendered):
    _, out, videos = rendered
    row = by_id(read_catalog(out), "ti2v")
    assert row["model"] == str(checkpoint_dir("wan2.2-ti2v")) + IMAGE_TASK
    assert resolve_model(row["model"]).family.name == "wan2.2-ti2v-i2v"
    assert row["image_sha256"] == hashlib.sha256(videos["ti2v"].read_bytes()).hexdigest()


def test_vace_rows_record_their_control_video_and_mask(rendered):
    _, out, videos = rendered
    catalog = read_catalog(out)
    masked, plain = by_id(catalog, "vace"), by_id(catalog, "vace-video")
    assert resolve_model(masked["model"]).family.name == "wan-vace"
    assert (masked["num_frames"], masked["conditioning_scale"]) == (5, 0.7)
    assert len(masked["mask_sha256"]) == 64 and masked["mask"].endswith("mask.mp4")
    assert (plain["num_frames"], plain["conditioning_scale"], plain["mask"]) == (9, 1.0, None)
    references = json.loads(by_id(catalog, "vace-refs")["reference_images"])
    assert [Path(r["uri"]).name for r in references] == ["ltx.png", "wide.png"]  # in order
    for entry in references:
        assert entry["sha256"] == hashlib.sha256(Path(entry["uri"]).read_bytes()).hexdigest()
    assert by_id(catalog, "vace-refs")["key"] != masked["key"]
