"""HunyuanVideo 1.5 (pipeline/models/families/hunyuan15.py) on its tiny text-to-video and
image-to-video checkpoints: promptreel's frames equal a plain diffusers call that sets the
row's guidance on the guider (rows with a negative prompt at guidance 6, rows without at
1; each row renders alone), detection of every variant, validate's refusals, and the
measured quirks the adapter rests on: no guidance_scale in `__call__`, the negative used
whenever guidance is not 1, cached text equal to the call's own encoding, a batch the VAE
cannot decode, and image-to-video sizes picked from the image."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from pipeline.actor.renderer import Renderer
from pipeline.config import RenderSettings
from pipeline.models import resolve_model
from pipeline.models.families import FAMILIES, family_for_checkpoint, family_for_hub_id
from pipeline.models.families import hunyuan15 as adapter
from pipeline.models.families.base import Checkpoint
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

CASES = {name: case for name, case in cases().items() if name.startswith("hunyuan1.5")}
T2V, I2V = CASES["hunyuan1.5"], CASES["hunyuan1.5-i2v"]
# The second prompt quotes text: the ByT5 glyph encoder reads it (others get zeros).
PROMPTS = ("A red fox runs through snow", 'a neon sign saying "OPEN" flickers at night')


@pytest.fixture(scope="module")
def dirs():
    return {name: checkpoint_dir(name) for name in CASES}


@pytest.fixture(scope="module")
def pipes(dirs):
    return {name: plain_pipe(path) for name, path in dirs.items()}


def rows_for(case, fields: dict, **extra) -> list[dict]:
    return case_rows(case, PROMPTS, fields, **extra)


def plain_call(pipe, row: dict, **extra):
    """One row as a user writes it: the guidance on the guider (diffusers' docs), the rest
    in the call (the pipeline takes no guidance_scale)."""
    pipe.guider = pipe.guider.new(guidance_scale=row["guidance_scale"])
    frames = pipe(
        prompt=row["prompt"],
        negative_prompt=row.get("negative_prompt", ""),
        num_frames=row["num_frames"],
        num_inference_steps=row["num_inference_steps"],
        generator=generators([row])[0],
        output_type="np",
        **extra,
    ).frames
    return plain_uint8(frames)[0]


@pytest.mark.parametrize("bucket", ["with_negative", "without_negative"])
def test_text_rows_equal_plain_diffusers_calls(dirs, pipes, bucket):
    """At batch size 2 each row renders alone (the VAE cannot decode a batch), through the
    embedding cache: each equals a plain call of that row."""
    rows = rows_for(T2V, getattr(T2V, bucket))
    ours = promptreel_frames(dirs["hunyuan1.5"], rows, batch_size=2)
    shape = T2V.shape
    for mine, r in zip(ours, rows, strict=True):
        theirs = plain_call(pipes["hunyuan1.5"], r, height=r["height"], width=r["width"])
        assert mine.shape == (shape["num_frames"], shape["height"], shape["width"], 3)
        assert np.array_equal(mine, theirs)


def image_item(path, bucket: dict, **shape):
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return make_item(
        PROMPTS[1],
        7,
        model=str(checkpoint_dir("hunyuan1.5-i2v")),
        num_inference_steps=I2V.steps,
        media=(MediaInput("image", str(path), digest),),
        **bucket,
        **shape,
    )


@pytest.mark.parametrize("bucket", ["with_negative", "without_negative"])
def test_image_rows_equal_plain_image_to_video_calls(dirs, pipes, bucket, tmp_path):
    """A 100x60 image is fitted to the 16:9 size (48x80) first: the call is given that
    image (no height or width: the pipeline takes none) and renders at its size."""
    fields = getattr(I2V, bucket)
    path = png_rgb(tmp_path, 100, 60)
    item = image_item(path, fields, **I2V.shape)
    spec = str(dirs["hunyuan1.5-i2v"])
    renderer = Renderer(spec, RenderSettings(model=spec, batch_size=2, threads=THREADS))
    [ours] = renderer.render(Batch((item,), 2))
    fitted = renderer.media_inputs(item)["image"]
    assert fitted.size == (80, 48)
    plain = {"prompt": item.prompt, "seed": 7, "num_inference_steps": I2V.steps, **fields}
    theirs = plain_call(pipes["hunyuan1.5-i2v"], plain | I2V.shape, image=fitted)
    assert ours.shape == (5, 48, 80, 3) and np.array_equal(ours, theirs)


def test_the_rows_guidance_is_what_renders(dirs, pipes):
    """Guidance 3 renders otherwise than the guider's own 6, and as a plain call with
    pipe.guider.new(guidance_scale=3)."""
    rows = rows_for(T2V, dict(guidance_scale=3.0, negative_prompt="blurry"))[:1]
    [ours] = promptreel_frames(dirs["hunyuan1.5"], rows, batch_size=1)
    [six] = promptreel_frames(dirs["hunyuan1.5"], [rows[0] | {"guidance_scale": 6.0}], 1)
    size = dict(height=rows[0]["height"], width=rows[0]["width"])
    assert np.array_equal(ours, plain_call(pipes["hunyuan1.5"], rows[0], **size))
    assert not np.array_equal(ours, six)


def test_call_takes_no_guidance_scale_nor_image_size(pipes):
    with pytest.raises(TypeError, match="guidance_scale"):
        pipes["hunyuan1.5"](prompt="a", guidance_scale=3.0, num_inference_steps=1)
    with pytest.raises(TypeError, match="height"):
        pipes["hunyuan1.5-i2v"](prompt="a", image=None, height=48, num_inference_steps=1)


@pytest.mark.parametrize("guidance, used", [(1.0, False), (0.5, True), (6.0, True)])
def test_the_negative_is_used_unless_guidance_is_one(pipes, guidance, used):
    pipe = pipes["hunyuan1.5"]
    base = dict(prompt="a fox", seed=3, num_inference_steps=2, guidance_scale=guidance)
    size = dict(height=T2V.shape["height"], width=T2V.shape["width"])
    clips = [
        plain_call(pipe, base | T2V.shape | dict(negative_prompt=negative), **size)
        for negative in ("blurry", "static, dark")
    ]
    assert (not np.array_equal(*clips)) == used
    assert adapter.cfg_on(make_item("a", 1, guidance_scale=guidance)) == used


def test_encode_text_equals_the_calls_own_encoding(pipes):
    """Each text alone (under inference_mode, as the renderer encodes) equals the batch's
    encoding: both encoders pad to fixed lengths."""
    import torch

    pipe = pipes["hunyuan1.5"]
    with torch.inference_mode():
        batch = pipe.encode_prompt(prompt=list(PROMPTS), dtype=torch.float32, batch_size=2)
        alone = [adapter.encode_hunyuan15(pipe, text) for text in PROMPTS]
    for i, name in enumerate(adapter.NAMES):
        for j, one in enumerate(alone):
            assert one[name].shape[0] == 1 and torch.equal(batch[i][j], one[name][0])
    assert alone[1]["prompt_embeds_mask_2"].sum() > 0 == alone[0]["prompt_embeds_mask_2"].sum()


def test_the_vae_cannot_decode_a_batch(pipes):
    """Why batch_pixel_safe is False: a plain call of 2 prompts fails in VAE decode."""
    with pytest.raises(RuntimeError, match="broadcast"):
        pipes["hunyuan1.5"](
            prompt=["a", "b"], height=16, width=16, num_frames=1, num_inference_steps=1
        )
    assert not any(f.batch_pixel_safe for f in adapter.FAMILIES)


@pytest.mark.parametrize("frames, rendered", [(6, 5), (8, 5), (9, 9), (1, 1)])
def test_diffusers_floors_frames_and_sides_silently(pipes, frames, rendered):
    out = pipes["hunyuan1.5"](
        prompt="a", height=40, width=24, num_frames=frames, num_inference_steps=1, output_type="np"
    ).frames
    assert out.shape == (1, rendered, 32, 16, 3)


def test_detection(dirs):
    for name, case in CASES.items():
        assert resolve_model(str(dirs[name])).family.name == case.family
    i2v = resolve_model(str(dirs["hunyuan1.5-i2v"])).family
    assert i2v.shape.fixed_size == (48, 80) and i2v.media_required == ("image",)


def write_checkpoint(root, pipeline_class, target_size, guidance, meanflow=False):
    """Just the configs detection reads: model_index, the transformer's, the guider's."""
    (root / "transformer").mkdir(parents=True)
    (root / "guider").mkdir()
    (root / "model_index.json").write_text(json.dumps({"_class_name": pipeline_class}))
    config = {"target_size": target_size, "use_meanflow": meanflow}
    (root / "transformer" / "config.json").write_text(json.dumps(config))
    guider = {"_class_name": "ClassifierFreeGuidance", "guidance_scale": guidance}
    (root / "guider" / "guider_config.json").write_text(json.dumps(guider))
    return Checkpoint(json.loads((root / "model_index.json").read_text()), root)


@pytest.mark.parametrize(
    "image, target, guidance, meanflow, expected",
    [
        (False, 640, 6.0, False, "hunyuan1.5-480p"),
        (False, 640, 1.0, False, "hunyuan1.5-480p-distilled"),
        (False, 960, 6.0, False, "hunyuan1.5-720p"),
        (False, 960, 1.0, False, "hunyuan1.5-720p-distilled"),
        (True, 640, 6.0, False, "hunyuan1.5-i2v-480p"),
        (True, 640, 1.0, False, "hunyuan1.5-i2v-480p-distilled"),
        (True, 640, 1.0, True, "hunyuan1.5-i2v-480p-step-distilled"),
        (True, 960, 6.0, False, "hunyuan1.5-i2v-720p"),
        (True, 960, 1.0, False, "hunyuan1.5-i2v-720p-distilled"),
    ],
)
def test_variants_are_told_apart_by_their_configs(
    tmp_path, image, target, guidance, meanflow, expected
):
    pipeline_class = "HunyuanVideo15" + ("ImageToVideoPipeline" if image else "Pipeline")
    checkpoint = write_checkpoint(tmp_path, pipeline_class, target, guidance, meanflow)
    family = family_for_checkpoint(checkpoint)
    assert family.name == expected
    assert family.defaults["guidance_scale"] == guidance
    size = (720, 1280) if target == 960 else (480, 848)
    assert (family.defaults["height"], family.defaults["width"]) == size
    assert family.shape.fixed_size == (size if image else None)


def test_hub_ids():
    expected = {
        "480p_t2v": "hunyuan1.5-480p",
        "480p_t2v_distilled": "hunyuan1.5-480p-distilled",
        "720p_t2v": "hunyuan1.5-720p",
        "480p_i2v": "hunyuan1.5-i2v-480p",
        "480p_i2v_distilled": "hunyuan1.5-i2v-480p-distilled",
        "480p_i2v_step_distilled": "hunyuan1.5-i2v-480p-step-distilled",
        "720p_i2v": "hunyuan1.5-i2v-720p",
        "720p_i2v_distilled": "hunyuan1.5-i2v-720p-distilled",
    }
    prefix = "hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-"
    assert {tail: family_for_hub_id(prefix + tail).name for tail in expected} == expected
    assert family_for_hub_id("hunyuanvideo-community/HunyuanVideo").name == "hunyuan"


def test_buckets_equal_diffusers():
    from diffusers.pipelines.hunyuan_video1_5.image_processor import (
        HunyuanVideo15ImageProcessor,
        generate_crop_size_list,
    )

    processor = HunyuanVideo15ImageProcessor(vae_scale_factor=16)
    for target in (64, 640, 960):
        assert adapter.crop_sizes(target) == generate_crop_size_list(target, 16)
        for height in range(16, 1300, 157):
            for width in range(16, 1300, 139):
                got = processor.calculate_default_height_width(height, width, target)
                assert adapter.bucket(target, height, width) == tuple(got)
    assert adapter.sixteen_nine(640) == (480, 848) and adapter.sixteen_nine(960) == (720, 1280)


def test_rules_refused_at_validate(dirs, tmp_path):
    t2v, i2v = str(dirs["hunyuan1.5"]), str(dirs["hunyuan1.5-i2v"])
    image = str(png_rgb(tmp_path, 100, 60))
    got = refusals(
        [
            row(0, num_frames=6),  # diffusers floors it to 5, silently
            row(1, height=40),  # floored to 32, silently
            row(2, num_frames=9, height=32, width=48),  # fine
            row(3, model=i2v, image=image, height=64, width=64),  # maps to itself, not 16:9
            row(4, model=i2v),  # no image
            row(5, model=i2v, image=image),  # fine: 48x80, its 16:9 size
        ],
        t2v,
    )
    fixed = (
        "expected exactly 48x80 (height x width) for this hunyuan1.5-i2v-480p checkpoint "
        "(the pipeline picks the size from the image; its 16:9 size renders as asked)"
    )
    assert got == [
        "row 0 (id 'r0'): num_frames: expected 4k+1 frames for hunyuan1.5-480p models "
        "(nearest: 5 or 9), got 6",
        "row 1 (id 'r1'): height: expected a multiple of 16 for hunyuan1.5-480p models "
        "(nearest: 32 or 48), got 40",
        f"row 3 (id 'r3'): height: {fixed}, got 64x64",
        f"row 4 (id 'r4'): height: {fixed}, got 480x848",  # the 480p card's size, not this one's
        "row 4 (id 'r4'): image: expected a path or URL of an image: hunyuan1.5-i2v-480p "
        "models need image",
    ]


def test_guiders_it_cannot_follow_are_refused(pipes):
    pipe = pipes["hunyuan1.5"]
    keep = pipe.guider
    pipe.guider = keep.new(use_original_formulation=True)
    try:
        with pytest.raises(ValueError, match="diffusers formulation"):
            adapter.apply_guidance(pipe, make_item("a", 1, guidance_scale=3.0))
    finally:
        pipe.guider = keep
    assert FAMILIES["hunyuan1.5-480p"].prepare_call is adapter.apply_guidance
