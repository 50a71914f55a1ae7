"""LTX-2 (pipeline/models/families/ltx2.py) on its tiny checkpoints
(tests/support/new_families/ltx2.py): an LTX-2.3-shaped `LTX2Pipeline` and an
LTX-2.0-shaped `LTX2ImageToVideoPipeline`.

- promptreel's frames equal a plain diffusers call, rows with a negative prompt (CFG) and
  without (guidance 1 for video and audio), the row's fps passed as frame_rate;
- the audio: `audio_of` on two identical plain calls gives equal, finite samples in
  [-1, 1] at the vocoder's rate, of the measured length;
- detection of every variant, hub hints, the image task on text-to-video weights;
- the rules validate refuses; family defaults equal the call's defaults.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json

import numpy as np
import pytest

from pipeline.actor.renderer import Renderer
from pipeline.config import RenderSettings
from pipeline.models import resolve_model
from pipeline.models.families import FAMILIES, family_for_checkpoint, family_for_hub_id
from pipeline.models.families.base import Checkpoint
from pipeline.plan.batches import Batch, MediaInput
from tests.e2e.test_video_families import refusals
from tests.support.items import make_item
from tests.support.media_files import png_rgb
from tests.support.new_families import cases, checkpoint_dir
from tests.support.parity import (
    THREADS,
    generators,
    items_of,
    plain_pipe,
    plain_uint8,
)

CASES = cases()
T2V, I2V = CASES["ltx2"], CASES["ltx2.0-i2v"]
# Per bucket: its rows' own fields (the bucket with a negative also sets another fps and
# a family parameter, as a bucket shares them: both must reach the call).
SHARED = dict(fps=25, stg_scale=0.5)
ROWS = {
    "with": [
        dict(prompt="a fox runs on snow", seed=3, negative_prompt="blurry", **SHARED),
        dict(prompt="waves at night", seed=4, negative_prompt="static, dull", **SHARED),
    ],
    "without": [dict(prompt="a red car", seed=5), dict(prompt="rain on glass", seed=6)],
}
PARAM_NAMES = FAMILIES["ltx2"].param_names + ("image_crf",)


def rows_of(case, bucket: str, count: int = 2) -> list[dict]:
    fields = case.shape | dict(num_inference_steps=case.steps)
    fields |= case.with_negative if bucket == "with" else case.without_negative
    return [fields | row for row in ROWS[bucket][:count]]


def plain_call(pipe, rows: list[dict], **media):
    """The pipeline called plainly with the rows' fields, under diffusers' own keyword names
    (fps -> frame_rate), plus the variant's fixed arguments (LTX-2.0: the legacy ones its
    docstrings name); one generator itself for one row, as a notebook user writes it."""
    first = rows[0]
    gens = generators(rows)
    kwargs = dict(resolve_model(pipe.name_or_path).family.call_args)
    kwargs |= {k: v for k, v in first.items() if k in PARAM_NAMES}
    if "negative_prompt" in first:
        kwargs["negative_prompt"] = [r["negative_prompt"] for r in rows]
    return pipe(
        prompt=[r["prompt"] for r in rows],
        generator=gens if len(gens) > 1 else gens[0],
        height=first["height"],
        width=first["width"],
        num_frames=first["num_frames"],
        frame_rate=float(first.get("fps", 24)),
        num_inference_steps=first["num_inference_steps"],
        guidance_scale=first["guidance_scale"],
        output_type="np",
        **kwargs,
        **media,
    )


@pytest.fixture(scope="module")
def t2v():
    model = checkpoint_dir(T2V.name)
    return model, plain_pipe(model)


@pytest.fixture(scope="module")
def i2v(tmp_path_factory):
    from diffusers.utils import load_image

    model = checkpoint_dir(I2V.name)
    shape = I2V.shape
    image = png_rgb(tmp_path_factory.mktemp("ltx2"), shape["width"], shape["height"])
    return model, plain_pipe(model), image, load_image(str(image))


@pytest.mark.parametrize("bucket", ["with", "without"])
def test_t2v_frames_and_sound_equal_a_plain_call_at_batch_two(t2v, bucket):
    """promptreel's frames and samples of each clip equal a plain call's (its `.frames`,
    and its `.audio` read as the adapter reads it)."""
    model, pipe = t2v
    rows = rows_of(T2V, bucket)
    settings = RenderSettings(model=str(model), batch_size=2, threads=THREADS)
    renderer = Renderer(str(model), settings)
    got = renderer.render_clips(Batch(tuple(items_of(str(model), rows)), 2))
    output = plain_call(pipe, rows)
    sounds = renderer.family.audio_of(pipe, output)
    for clip, frames, (samples, rate) in zip(got, plain_uint8(output.frames), sounds, strict=True):
        assert np.array_equal(clip.frames, frames)
        assert clip.audio.rate == rate and np.array_equal(clip.audio.samples, samples)
    assert not np.array_equal(got[0].audio.samples, got[1].audio.samples)


def test_i2v_frames_equal_a_plain_call_one_row_per_call(i2v):
    model, pipe, image, loaded = i2v
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    renderer = Renderer(str(model), RenderSettings(model=str(model), batch_size=1, threads=THREADS))
    for bucket in ("with", "without"):
        rows = rows_of(I2V, bucket, count=1)
        item = items_of(str(model), rows)[0]
        item = dataclasses.replace(item, media=(MediaInput("image", str(image), digest),))
        got = renderer.render(Batch((item,), 1))[0]
        want = plain_uint8(plain_call(pipe, rows, image=loaded).frames)[0]
        assert np.array_equal(got, want), bucket


def test_audio_of_a_plain_call_is_finite_stereo_of_the_measured_length(t2v, i2v):
    for (model, pipe, *rest), case, rate in ((t2v, T2V, 48000), (i2v, I2V, 24000)):
        family = resolve_model(str(model)).family
        count = 2 if family.batch_pixel_safe else 1
        rows = rows_of(case, "with", count)
        media = {"image": rest[1]} if rest else {}
        sounds = family.audio_of(pipe, plain_call(pipe, rows, **media))
        assert len(sounds) == count  # one per clip, in call order
        # (4L - 3) mel frames of rate / 100 samples, L = round(frames / fps * 25) latents
        latents = round(case.shape["num_frames"] / rows[0]["fps"] * 25)
        length = (4 * latents - 3) * rate // 100
        for samples, got_rate in sounds:
            assert got_rate == rate
            assert samples.dtype == np.float32 and samples.shape == (2, length)
            assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0


def test_cfg_runs_when_video_or_audio_guidance_is_above_one():
    family = FAMILIES["ltx2"]
    item = make_item("a", 1, guidance_scale=1.0)
    assert family.needs_negative(item)  # audio_guidance_scale defaults to 7
    assert not family.needs_negative(
        dataclasses.replace(item, params=(("audio_guidance_scale", 1.0),))
    )
    assert family.needs_negative(
        dataclasses.replace(item, guidance_scale=3.0, params=(("audio_guidance_scale", 1.0),))
    )


def test_a_text_embedding_does_not_depend_on_its_batch_mates(t2v):
    """Each text is padded alone to max_sequence_length 1024 and normalised with its own
    mask: batching is text-safe (encode_text is None for memory, see the adapter)."""
    import torch

    _, pipe = t2v
    assert FAMILIES["ltx2"].encode_text is None and FAMILIES["ltx2"].batch_pixel_safe

    def encode(texts):
        return pipe.encode_prompt(texts, do_classifier_free_guidance=False, device="cpu")

    alone, pair = encode(["a cat"]), encode(["a cat", "a much longer prompt about the sea"])
    assert alone[0].shape[1] == 1024
    assert torch.equal(alone[0], pair[0][:1]) and torch.equal(alone[1], pair[1][:1])


def test_checkpoints_are_detected_as_their_family():
    for case in CASES.values():
        if case.name.startswith("ltx2"):
            assert resolve_model(str(checkpoint_dir(case.name))).family.name == case.family


def test_image_rows_of_text_to_video_weights_take_the_image_pipeline(t2v):
    model, _ = t2v
    assert resolve_model(f"{model}#i2v").family.name == "ltx2-i2v"
    assert FAMILIES["ltx2.0"].task_family("image") == "ltx2.0-i2v"
    assert FAMILIES["ltx2.5"].task_family("image") == "ltx2.5-i2v"


@pytest.mark.parametrize(
    "configs, t2v_name",
    [
        ({"transformer": {"cross_attn_mod": True}}, "ltx2"),
        ({"transformer": {"cross_attn_mod": False}}, "ltx2.0"),
        ({"transformer": {"num_layers": 48}}, "ltx2.0"),  # converted before 2.3: no key
        ({"transformer": {}, "text_encoder": {"model_type": "gemma4"}}, "ltx2.5"),
        ({}, "ltx2"),  # unreadable configs: the call's own (2.3) defaults
    ],
)
def test_variants_are_told_apart_by_their_configs(tmp_path, configs, t2v_name):
    for component, config in configs.items():
        (tmp_path / component).mkdir()
        (tmp_path / component / "config.json").write_text(json.dumps(config))
    for cls, name in (("LTX2Pipeline", t2v_name), ("LTX2ImageToVideoPipeline", t2v_name + "-i2v")):
        family = family_for_checkpoint(Checkpoint({"_class_name": cls}, tmp_path))
        assert family.name == name


def test_a_side_of_one_latent_is_refused_for_ltx2_0_only(tmp_path):
    """LTX-2.0's VAE decoder pads by reflection and fails on a 32 px side (one latent)."""
    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "config.json").write_text(json.dumps({"cross_attn_mod": False}))
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "LTX2Pipeline"}))
    row = dict(prompt="a prompt", num_frames=9, width=64)
    got = refusals([row | dict(id="r0", seed=0, height=32)], str(tmp_path))
    assert got == [
        "row 0 (id 'r0'): height: expected at least 64 for ltx2.0 models "
        "(LTX-2.0's VAE decoder fails on 32), got 32"
    ]
    assert FAMILIES["ltx2.0-i2v"].shape.min_side == 64
    assert FAMILIES["ltx2"].shape.min_side == FAMILIES["ltx2.5-i2v"].shape.min_side == 1


def test_hub_ids_name_their_variant():
    assert family_for_hub_id("Lightricks/LTX-2").name == "ltx2.0"
    assert family_for_hub_id("rootonchair/LTX-2-19b-distilled").name == "ltx2.0"
    assert family_for_hub_id("diffusers/LTX-2.3-Diffusers").name == "ltx2"
    assert family_for_hub_id("Lightricks/LTX-2.5-Diffusers").name == "ltx2.5"
    assert family_for_hub_id("Lightricks/LTX-Video-0.9.7-dev").name == "ltx-condition"
    assert family_for_hub_id("Lightricks/LTX-Video").name == "ltx"


def test_param_defaults_are_the_calls_and_ltx2_0_passes_its_legacy_arguments():
    from diffusers import LTX2ImageToVideoPipeline, LTX2Pipeline
    from diffusers.pipelines.ltx2 import utils

    for cls in (LTX2Pipeline, LTX2ImageToVideoPipeline):
        signature = inspect.signature(cls.__call__).parameters
        for p in FAMILIES["ltx2"].params:
            assert signature[p.name].default == p.default, p.name
        assert signature["enable_prompt_enhancement"].default is False
        assert signature["max_sequence_length"].default == 1024
    crf = {n: FAMILIES[n].param("image_crf").default for n in ("ltx2-i2v", "ltx2.5-i2v")}
    assert crf == {"ltx2-i2v": utils.DEFAULT_IMAGE_CRF, "ltx2.5-i2v": utils.LTX2_5_IMAGE_CRF}
    assert FAMILIES["ltx2"].defaults["negative_prompt"] == utils.DEFAULT_NEGATIVE_PROMPT
    legacy = dict(FAMILIES["ltx2.0"].call_keywords({}))
    assert legacy == {"use_cross_timestep": False, "spatio_temporal_guidance_blocks": [29]}
    assert FAMILIES["ltx2"].call_keywords({}) == {}


def test_rules_refused_at_validate(t2v):
    model, _ = t2v
    row = dict(prompt="a prompt", height=64, width=64, num_frames=9)
    got = refusals(
        [
            row | dict(id="r0", seed=0, num_frames=12),
            row | dict(id="r1", seed=1, height=48),
            row | dict(id="r2", seed=2, audio_guidance_scale=0.0),
            row | dict(id="r3", seed=3, audio_stg_scale=0.0, guidance_rescale=1.5),
            row | dict(id="r4", seed=4, motion_speed=0.0),
            row | dict(id="r5", seed=5, image_crf=0),
            row | dict(id="r6", seed=6, num_frames=17, stg_scale=0.0, audio_stg_scale=1e-6),
            row | dict(id="r7", seed=7, height=32),  # fine: only LTX-2.0's decoder fails
        ],
        str(model),
    )
    takes = ", ".join(FAMILIES["ltx2"].param_names)
    assert got == [
        "row 0 (id 'r0'): num_frames: expected 8k+1 frames for ltx2 models "
        "(nearest: 9 or 17), got 12",
        "row 1 (id 'r1'): height: expected a multiple of 32 for ltx2 models "
        "(nearest: 32 or 64), got 48",
        "row 2 (id 'r2'): audio_guidance_scale: expected a finite number above 0 "
        "(diffusers takes 0 as guidance_scale), got 0.0",
        "row 3 (id 'r3'): audio_stg_scale: expected a finite number above 0 "
        "(diffusers takes 0 as stg_scale), got 0.0",
        "row 3 (id 'r3'): guidance_rescale: expected a number in 0..1, got 1.5",
        "row 4 (id 'r4'): motion_speed: expected a finite number above 0, got 0.0",
        f"row 5 (id 'r5'): image_crf: model '{model}' (ltx2 family) does not take image_crf; "
        f"its family parameters: {takes} (see `promptreel models`)",
    ]
