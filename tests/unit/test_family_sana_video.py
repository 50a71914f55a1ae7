"""Sana Video (pipeline/models/families/sana_video.py) on its tiny 480p (Wan VAE) and 720p
(LTX-2 VAE) checkpoints: promptreel's frames equal a plain diffusers call (text rows
batched with and without a negative prompt, an image row through `#i2v`), detection,
validate's refusals, and the measured quirks the adapter rests on: exact-size rendering
(resolution binning off), batch-mates that do not move pixels, and a negative prompt
encoded without the instruction a prompt gets."""

from __future__ import annotations

import hashlib
import inspect

import numpy as np
import pytest

from pipeline.actor.renderer import Renderer
from pipeline.config import RenderSettings
from pipeline.models import IMAGE_TASK, resolve_model
from pipeline.models.families import family_for_hub_id
from pipeline.models.families.sana_video import NEGATIVE, SANA_VIDEO
from pipeline.plan.batches import Batch, MediaInput
from tests.e2e.test_video_families import refusals, row
from tests.support.items import make_item
from tests.support.media_files import png_rgb
from tests.support.new_families import cases, checkpoint_dir
from tests.support.parity import (
    THREADS,
    case_rows,
    generators,
    plain_pipe,
    plain_uint8,
    promptreel_frames,
)

CASES = {name: case for name, case in cases().items() if name.startswith("sana-video")}
PROMPTS = ("A red fox runs through snow", "a lighthouse at night, waves breaking on the rocks")


@pytest.fixture(scope="module")
def dirs():
    return {name: checkpoint_dir(name) for name in CASES}


@pytest.fixture(scope="module")
def pipes(dirs):
    return {name: plain_pipe(path) for name, path in dirs.items()}


def rows_for(case, fields: dict, **extra) -> list[dict]:
    return case_rows(case, PROMPTS, fields, **extra)


def plain_call(pipe, rows: list[dict]):
    """`pipe(...)` as a user writes it, with the call argument promptreel fixes (render at
    exactly the size asked for: use_resolution_binning=False)."""
    first = rows[0]
    frames = pipe(
        prompt=[r["prompt"] for r in rows],
        negative_prompt=[r.get("negative_prompt", NEGATIVE) for r in rows],
        height=first["height"],
        width=first["width"],
        frames=first["num_frames"],
        num_inference_steps=first["num_inference_steps"],
        guidance_scale=first["guidance_scale"],
        generator=generators(rows),
        output_type="np",
        use_resolution_binning=False,
    ).frames
    return plain_uint8(frames)


@pytest.mark.parametrize("bucket", ["with_negative", "without_negative"])
@pytest.mark.parametrize("name", CASES)
def test_batched_frames_equal_a_plain_diffusers_call(dirs, pipes, name, bucket):
    case = CASES[name]
    rows = rows_for(case, getattr(case, bucket))
    ours = promptreel_frames(dirs[name], rows, batch_size=2)
    theirs = plain_call(pipes[name], rows)
    assert len(ours) == 2
    shape = case.shape
    for mine, plain in zip(ours, theirs, strict=True):
        assert mine.shape == (shape["num_frames"], shape["height"], shape["width"], 3)
        assert np.array_equal(mine, plain)


def test_a_prompt_renders_the_same_alone_and_beside_a_longer_one(dirs):
    """Text is padded to a fixed length, never the batch's longest: batch_pixel_safe."""
    case = CASES["sana-video"]
    rows = rows_for(case, case.with_negative)
    rows[1]["negative_prompt"] = "ugly, low quality, jpeg artifacts, watermark, text, extra limbs"
    assert resolve_model(str(dirs["sana-video"])).family.batch_pixel_safe
    together = promptreel_frames(dirs["sana-video"], rows, batch_size=2)
    alone = promptreel_frames(dirs["sana-video"], rows[:1], batch_size=1)
    assert np.array_equal(together[0], alone[0])


@pytest.mark.parametrize("name", CASES)
def test_an_image_row_equals_a_plain_image_to_video_call(dirs, name, tmp_path):
    import torch
    from diffusers import SanaImageToVideoPipeline
    from diffusers.utils import load_image

    shape, steps = CASES[name].shape, CASES[name].steps
    image = png_rgb(tmp_path, shape["width"], shape["height"])
    spec = str(dirs[name]) + IMAGE_TASK
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    item = make_item(
        "a fox runs",
        7,
        model=spec,
        negative_prompt="blurry",
        num_inference_steps=steps,
        guidance_scale=6.0,
        media=(MediaInput("image", str(image), digest),),
        **shape,
    )
    renderer = Renderer(spec, RenderSettings(model=spec, batch_size=1, threads=THREADS))
    assert renderer.family.name == f"{name}-i2v"
    (ours,) = renderer.render(Batch((item,), 1))

    torch.set_num_threads(THREADS)
    i2v = SanaImageToVideoPipeline.from_pretrained(str(dirs[name]), dtype=torch.float32)
    i2v.set_progress_bar_config(disable=True)
    plain = i2v(
        image=load_image(str(image)),
        prompt="a fox runs",
        negative_prompt="blurry",
        height=shape["height"],
        width=shape["width"],
        frames=shape["num_frames"],
        num_inference_steps=steps,
        guidance_scale=6.0,
        generator=torch.Generator("cpu").manual_seed(7),
        output_type="np",
        use_resolution_binning=False,
    ).frames
    assert np.array_equal(ours, plain_uint8(plain)[0])


@pytest.mark.parametrize("name", CASES)
def test_detection(dirs, name):
    assert resolve_model(str(dirs[name])).family.name == CASES[name].family
    i2v = resolve_model(str(dirs[name]) + IMAGE_TASK).family
    assert i2v.name == f"{name}-i2v" and i2v.media_required == ("image",)
    assert not i2v.batch_pixel_safe


def test_hub_ids():
    found = {
        hub_id: family_for_hub_id(f"Efficient-Large-Model/{hub_id}").name
        for hub_id in (
            "SANA-Video_2B_480p_diffusers",
            "SANA-Video_2B_480p_LongLive_diffusers",
            "SANA-Video_2B_720p_diffusers",
        )
    }
    assert found == {
        "SANA-Video_2B_480p_diffusers": "sana-video",
        "SANA-Video_2B_480p_LongLive_diffusers": "sana-video",
        "SANA-Video_2B_720p_diffusers": "sana-video-720p",
    }


def test_rules_refused_at_validate(dirs):
    got = refusals(
        [
            row(0, num_frames=8),  # diffusers floors it to 5, silently
            row(1, height=48),  # diffusers raises: not divisible by 32
            row(2, width=80),
            row(3, num_frames=13, height=32, width=64),  # fine
        ],
        str(dirs["sana-video"]),
    )
    assert got == [
        "row 0 (id 'r0'): num_frames: expected 4k+1 frames for sana-video models "
        "(nearest: 5 or 9), got 8",
        "row 1 (id 'r1'): height: expected a multiple of 32 for sana-video models "
        "(nearest: 32 or 64), got 48",
        "row 2 (id 'r2'): width: expected a multiple of 32 for sana-video models "
        "(nearest: 64 or 96), got 80",
    ]
    got = refusals(
        [row(0, num_frames=13), row(1, num_frames=17, height=64, width=96)],  # 13 -> 9
        str(dirs["sana-video-720p"]),
    )
    assert got == [
        "row 0 (id 'r0'): num_frames: expected 8k+1 frames for sana-video-720p models "
        "(nearest: 9 or 17), got 13",
    ]


FLOORED = [("sana-video", 8, 5), ("sana-video-720p", 16, 9)]  # (case, frames asked, got)


@pytest.mark.parametrize(("name", "frames", "floored"), FLOORED)
def test_diffusers_floors_frames_silently(pipes, name, frames, floored):
    out = pipes[name](
        prompt="a fox", height=64, width=64, frames=frames, num_inference_steps=1,
        guidance_scale=1.0, output_type="np", use_resolution_binning=False,
    ).frames  # fmt: skip
    assert out.shape[1] == floored


def test_calls_render_at_the_size_asked_for(pipes):
    """A default call bins sizes to the 480p aspect-ratio table: a square 32x32 becomes
    624x624, which its own check refuses; promptreel passes use_resolution_binning=False
    and the frame count as `frames`."""
    keywords = SANA_VIDEO.call_keywords(dict(num_frames=9, height=32))
    assert keywords == dict(frames=9, height=32, use_resolution_binning=False)
    with pytest.raises(ValueError, match="624 and 624"):
        pipes["sana-video"](prompt="a fox", height=32, width=32, frames=9, num_inference_steps=1)


def test_negative_is_encoded_without_the_instruction_the_prompt_gets(pipes):
    """Why encode_text is None: in the call a prompt gets complex_human_instruction and a
    negative does not, so one text has two encodings (encode_prompt with the call's
    settings reproduces each). Prompts are lower-cased and stripped first."""
    import torch

    pipe = pipes["sana-video"]
    call = inspect.signature(type(pipe).__call__).parameters
    settings = {
        name: call[name].default
        for name in ("complex_human_instruction", "clean_caption", "max_sequence_length")
    }
    seen = {}

    def keep(_pipe, _step, _timestep, tensors):
        seen.update(tensors)
        return {}

    text = "Blurry, static"
    pipe(
        prompt=[text], negative_prompt=[text], height=32, width=32, frames=1,
        num_inference_steps=1, guidance_scale=6.0, output_type="latent",
        use_resolution_binning=False, callback_on_step_end=keep,
        callback_on_step_end_tensor_inputs=["prompt_embeds", "negative_prompt_embeds"],
    )  # fmt: skip
    in_call_negative, in_call_prompt = seen["prompt_embeds"].chunk(2)  # CFG: [negative; prompt]
    assert torch.equal(in_call_negative, seen["negative_prompt_embeds"])

    def encode(value, **overrides):
        args = settings | overrides
        return pipe.encode_prompt([value], do_classifier_free_guidance=False, **args)[0]

    with torch.inference_mode():
        assert torch.equal(encode(text), in_call_prompt)
        assert torch.equal(encode("  blurry, STATIC "), in_call_prompt)
        assert torch.equal(encode(text, complex_human_instruction=None), in_call_negative)
        assert not torch.equal(in_call_prompt, in_call_negative)
