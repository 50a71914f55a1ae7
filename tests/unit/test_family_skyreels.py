"""SkyReels-V2 (pipeline/models/families/skyreels.py) on its tiny checkpoints: promptreel's
frames equal a plain diffusers call (text-to-video batched, diffusion forcing alone, short
and long clips, image-to-video and first-last-frame rows), detection and hub ids,
validate's refusals, and the measured quirks the adapter rests on: the cache's 512-token
text, the fps embedding, diffusion forcing's global-generator noise and its sticky
causal_block_size."""

from __future__ import annotations

import hashlib
import inspect

import numpy as np
import pytest

from pipeline.actor.renderer import Renderer
from pipeline.config import RenderSettings
from pipeline.models import resolve_model
from pipeline.models.families import FAMILIES, family_for_hub_id
from pipeline.models.families.skyreels import DF_PARAMS, SKYREELS_V2_DF
from pipeline.models.families.wan import encode_wan
from pipeline.plan.batches import Batch, MediaInput
from tests.e2e.test_video_families import refusals, row
from tests.support.items import make_item
from tests.support.media_files import png_rgb
from tests.support.new_families import cases, checkpoint_dir
from tests.support.parity import (
    THREADS,
    case_rows,
    generators,
    items_of,
    plain_pipe,
    plain_uint8,
    promptreel_frames,
)

CASES = cases()
T2V, DF, I2V, FLF2V = (
    CASES[n] for n in ("skyreels-v2", "skyreels-v2-df", "skyreels-v2-i2v", "skyreels-v2-flf2v")
)
PROMPTS = ("A red fox runs through snow", "a lighthouse at night, waves breaking on the rocks")
DF_DEFAULTS = {p.name: p.default for p in DF_PARAMS}  # validate fills every param
LONG = dict(num_frames=17, base_num_frames=9, overlap_history=5, addnoise_condition=20.0)


@pytest.fixture(scope="module")
def dirs():
    return {case.name: checkpoint_dir(case.name) for case in (T2V, DF, I2V, FLF2V)}


@pytest.fixture(scope="module")
def pipes(dirs):
    return {name: plain_pipe(path) for name, path in dirs.items()}


def rows_for(case, fields: dict, **extra) -> list[dict]:
    return case_rows(case, PROMPTS, fields, **extra)


def plain_call(pipe, rows: list[dict], raw: bool = False, **extra):
    """`pipe(...)` as a user writes it (the model card's 24 fps where the call takes fps):
    uint8 frames, or with `raw` the call's float frames."""
    first = rows[0]
    frames = pipe(
        prompt=[r["prompt"] for r in rows],
        negative_prompt=[r.get("negative_prompt", SKYREELS_V2_DF.defaults["negative_prompt"])
                         for r in rows],
        height=first["height"],
        width=first["width"],
        num_frames=first["num_frames"],
        num_inference_steps=first["num_inference_steps"],
        guidance_scale=first["guidance_scale"],
        generator=generators(rows),
        output_type="np",
        **extra,
    ).frames  # fmt: skip
    return np.asarray(frames) if raw else plain_uint8(frames)


def plain_df(pipe, one: dict):
    """One diffusion-forcing row alone, as a user reproduces it: the global generator
    seeded with the row's seed (addnoise_condition draws from it), every parameter given."""
    import torch

    torch.manual_seed(one["seed"] % 2**32)
    params = {name: one[name] for name in DF_DEFAULTS}
    return plain_call(pipe, [one], fps=one.get("fps", 24), **params)[0]


@pytest.mark.parametrize("bucket", ["with_negative", "without_negative"])
def test_text_to_video_batch_equals_a_plain_call(dirs, pipes, bucket):
    rows = rows_for(T2V, getattr(T2V, bucket))
    ours = promptreel_frames(dirs[T2V.name], rows, batch_size=2)
    theirs = plain_call(pipes[T2V.name], rows)
    for mine, plain in zip(ours, theirs, strict=True):
        assert mine.shape == (9, 32, 32, 3)
        assert np.array_equal(mine, plain)


@pytest.mark.parametrize("bucket", ["with_negative", "without_negative"])
def test_diffusion_forcing_rows_equal_plain_calls_alone(dirs, pipes, bucket):
    rows = rows_for(DF, getattr(DF, bucket), **DF_DEFAULTS)
    ours = promptreel_frames(dirs[DF.name], rows, batch_size=2)  # each renders alone
    for mine, one in zip(ours, rows, strict=True):
        assert np.array_equal(mine, plain_df(pipes[DF.name], one))


def test_a_long_clip_renders_in_windows_like_a_plain_call(dirs, pipes):
    """17 frames in windows of 9 overlapping by 5, noised repeats (addnoise_condition):
    the same pixels as a plain call after torch.manual_seed(seed), rendered again too."""
    rows = rows_for(DF, DF.with_negative, **DF_DEFAULTS | LONG)[:1]
    first = promptreel_frames(dirs[DF.name], rows, batch_size=1)[0]
    assert first.shape == (17, 32, 32, 3)
    assert np.array_equal(first, plain_df(pipes[DF.name], rows[0]))
    assert np.array_equal(first, promptreel_frames(dirs[DF.name], rows, batch_size=1)[0])


def test_addnoise_draws_from_the_global_generator(pipes):
    """Why each row's call seeds torch's global generator (prepare_call): without it two
    equal calls of a long clip with addnoise_condition differ, with it they are equal.
    Compared as the call's floats: on some CPUs' kernels the tiny model's difference
    rounds away in uint8 (measured with torch's AVX2 kernels pinned)."""
    import torch

    one = rows_for(DF, DF.with_negative, **DF_DEFAULTS | LONG)[0]
    params = {name: one[name] for name in DF_DEFAULTS}

    def call(seed: int | None):
        if seed is not None:
            torch.manual_seed(seed)
        return plain_call(pipes[DF.name], [one], raw=True, **params)[0]

    first = call(1)
    assert not np.array_equal(first, call(None))  # the generator moved on
    assert np.array_equal(first, call(1))


def test_fps_reaches_the_call_and_moves_pixels_only_as_16_or_not(dirs, pipes):
    """The fps embedding (DF-1.3B's inject_sample_info) reads fps as 16 or not 16."""
    rows = rows_for(DF, DF.without_negative, **DF_DEFAULTS, fps=16)[:1]
    sixteen = promptreel_frames(dirs[DF.name], rows, batch_size=1)[0]
    assert np.array_equal(sixteen, plain_df(pipes[DF.name], rows[0]))
    assert not np.array_equal(sixteen, plain_df(pipes[DF.name], rows[0] | dict(fps=24)))
    assert np.array_equal(
        plain_df(pipes[DF.name], rows[0] | dict(fps=24)),
        plain_df(pipes[DF.name], rows[0] | dict(fps=30)),
    )


def test_causal_block_size_does_not_stick_to_later_rows(dirs, pipes):
    """diffusers keeps a call's causal_block_size in the transformer's config: a later call
    without one renders in the earlier blocks. promptreel passes every row's (default 1)."""
    shape = dict(num_frames=21)  # 6 latent frames: blocks of 3 change the causal mask
    blocks, plain = (
        rows_for(DF, DF.without_negative, **DF_DEFAULTS | shape | dict(causal_block_size=c))[0]
        for c in (3, 1)
    )
    renderer = Renderer(
        str(dirs[DF.name]), RenderSettings(model=str(dirs[DF.name]), batch_size=1, threads=THREADS)
    )
    first, after = items_of(dirs[DF.name], [blocks, plain])
    in_blocks = renderer.render(Batch((first,), 1))[0]
    default = renderer.render(Batch((after,), 1))[0]
    assert np.array_equal(default, plain_df(pipes[DF.name], plain))
    assert not np.array_equal(in_blocks, default)
    # The quirk itself: a plain call in blocks of 3, then one that gives no block size.
    pipe, rest = pipes[DF.name], {k: v for k, v in DF_DEFAULTS.items() if k != "causal_block_size"}
    try:
        assert np.array_equal(plain_call(pipe, [blocks], causal_block_size=3, **rest)[0], in_blocks)
        assert np.array_equal(plain_call(pipe, [plain], **rest)[0], in_blocks)
    finally:
        pipe.transformer._set_ar_attention(1)


def test_diffusion_forcing_cannot_batch_with_an_fps_embedding(pipes):
    rows = rows_for(DF, DF.without_negative)
    with pytest.raises(RuntimeError, match="must match the size"):
        plain_call(pipes[DF.name], rows)
    assert not SKYREELS_V2_DF.batch_pixel_safe


@pytest.mark.parametrize("bucket", ["with_negative", "without_negative"])
@pytest.mark.parametrize("name", ["skyreels-v2-i2v", "skyreels-v2-flf2v"])
def test_an_image_row_equals_a_plain_image_to_video_call(dirs, pipes, tmp_path, name, bucket):
    """One media row alone; FLF2V gives its last frame too (`last_image`)."""
    from diffusers.utils import load_image
    from PIL import Image

    case = CASES[name]
    first = png_rgb(tmp_path, 32, 32)
    last = tmp_path / "last.png"
    Image.open(first).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(last)
    images = {"image": first, "last_image": last}
    inputs = FAMILIES[name].media_inputs  # FLF2V: image and last_image, both required
    media = tuple(
        MediaInput(c, str(images[c]), hashlib.sha256(images[c].read_bytes()).hexdigest())
        for c in inputs
    )
    fields = getattr(case, bucket)
    negative = fields.get("negative_prompt", "")
    model = str(dirs[name])
    item = make_item(
        "a fox runs", 7, model=model, negative_prompt=negative, num_inference_steps=case.steps,
        guidance_scale=fields["guidance_scale"], fps=24.0, media=media, **case.shape,
    )  # fmt: skip
    renderer = Renderer(model, RenderSettings(model=model, batch_size=1, threads=THREADS))
    assert renderer.family.media_required == inputs
    (ours,) = renderer.render(Batch((item,), 1))
    plain = pipes[name](
        **{c: load_image(str(images[c])) for c in inputs}, prompt="a fox runs",
        negative_prompt=negative, num_inference_steps=case.steps,
        guidance_scale=fields["guidance_scale"], output_type="np",
        generator=generators([dict(seed=7)]), **case.shape,
    ).frames  # fmt: skip
    assert ours.shape == (9, 32, 32, 3)
    assert np.array_equal(ours, plain_uint8(plain)[0])


def test_the_cache_encodes_text_as_every_call_does(pipes):
    """`__call__` encodes at 512 tokens, `encode_prompt` by default at 226: the cache uses
    512 (wan.encode_wan), text by text, equal to the call's own prompt embedding."""
    import torch

    for pipe in pipes.values():
        call = inspect.signature(type(pipe).__call__).parameters
        assert call["max_sequence_length"].default == 512
    pipe = pipes[T2V.name]
    seen = {}

    def keep(_pipe, _step, _t, tensors):
        seen.update(tensors)
        return {}

    pipe(
        prompt=[PROMPTS[0], PROMPTS[1]], height=32, width=32, num_frames=1,
        num_inference_steps=1, guidance_scale=1.0, output_type="latent",
        callback_on_step_end=keep, callback_on_step_end_tensor_inputs=["prompt_embeds"],
    )  # fmt: skip
    with torch.inference_mode():
        alone = encode_wan(pipe, PROMPTS[0])["prompt_embeds"]
    assert alone.shape == (1, 512, 32)
    assert torch.equal(alone[0], seen["prompt_embeds"][0])


def test_detection_and_hub_ids(dirs):
    for case in (T2V, DF, I2V, FLF2V):
        assert resolve_model(str(dirs[case.name])).family.name == case.family
    hub = {
        "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers": "skyreels-v2-df",
        "Skywork/SkyReels-V2-DF-14B-720P-Diffusers": "skyreels-v2-df",
        "Skywork/SkyReels-V2-T2V-14B-540P-Diffusers": "skyreels-v2",
        "Skywork/SkyReels-V2-I2V-14B-720P-Diffusers": "skyreels-v2-i2v",
        "Skywork/SkyReels-V2-FLF2V-1.3B-540P-Diffusers": "skyreels-v2-flf2v",
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": "wan",
        "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": "wan2.1-i2v",
    }
    assert {hub_id: family_for_hub_id(hub_id).name for hub_id in hub} == hub
    v1 = family_for_hub_id("Skywork/SkyReels-V1-Hunyuan-T2V")  # a HunyuanVideo model
    assert v1 is None or not v1.name.startswith("skyreels")


def test_diffusion_forcing_rules_refused_at_validate(dirs):
    got = refusals(
        [
            row(0, num_frames=8),  # diffusers rounds it to 9, with only a warning
            row(1, height=40),  # diffusers raises
            row(2, num_frames=17, base_num_frames=9, overlap_history=9),  # divides by zero
            row(3, num_frames=17, base_num_frames=9, overlap_history=13),  # renders 9 frames
            row(4, num_frames=9, causal_block_size=2),  # 3 latent frames: the last stays noise
            row(5, num_frames=33, base_num_frames=13, overlap_history=5, causal_block_size=2),
            row(6, base_num_frames=10),  # floors to 9's latent frames
            row(7, overlap_history=0, ar_step=-1, causal_block_size=0),
            row(8, ar_step=1.5, addnoise_condition=-1),
            row(9, num_frames=41, base_num_frames=17, overlap_history=9, causal_block_size=5),
            row(10, num_frames=21, causal_block_size=3, ar_step=2, addnoise_condition=20),
        ],
        str(dirs[DF.name]),
    )
    assert got == [
        "row 0 (id 'r0'): num_frames: expected 4k+1 frames for skyreels-v2-df models "
        "(nearest: 5 or 9), got 8",
        "row 1 (id 'r1'): height: expected a multiple of 16 for skyreels-v2-df models "
        "(nearest: 32 or 48), got 40",
        "row 2 (id 'r2'): overlap_history: expected fewer frames than base_num_frames (9) "
        "when num_frames (17) exceeds it (nearest: 5), got 9",
        "row 3 (id 'r3'): overlap_history: expected fewer frames than base_num_frames (9) "
        "when num_frames (17) exceeds it (nearest: 5), got 13",
        "row 4 (id 'r4'): causal_block_size: expected a block size dividing each window's "
        "latent frames (num_frames 9 is 3 latent frames; valid: 1 or 3), got 2",
        "row 5 (id 'r5'): causal_block_size: expected a block size dividing each window's "
        "latent frames (num_frames 33 renders in windows of base_num_frames 13 overlapping "
        "by overlap_history 5: windows of 4 and 3 latent frames; valid: 1), got 2",
        "row 6 (id 'r6'): base_num_frames: expected 4k+1 frames, at least 5 (97 for 540P "
        "checkpoints, 121 for 720P), got 10",
        "row 7 (id 'r7'): ar_step: expected a whole number >= 0 (0: synchronous; 5: "
        "asynchronous), got -1.0",  # the column holds 1.5 too
        "row 7 (id 'r7'): causal_block_size: expected a whole number >= 1 (5 with ar_step 5), "
        "got 0",
        "row 7 (id 'r7'): overlap_history: expected 4k+1 frames (17 or 37 recommended), got 0",
        "row 8 (id 'r8'): addnoise_condition: expected a finite number >= 0 (20 recommended "
        "for long clips, at most 50), got -1",
        "row 8 (id 'r8'): ar_step: expected a whole number >= 0 (0: synchronous; 5: "
        "asynchronous), got 1.5",
    ]


def test_text_to_video_rules_refused_at_validate(dirs):
    got = refusals(
        [row(0, num_frames=10), row(1, width=20), row(2, overlap_history=17), row(3)],
        str(dirs[T2V.name]),
    )
    assert got[:2] == [
        "row 0 (id 'r0'): num_frames: expected 4k+1 frames for skyreels-v2 models "
        "(nearest: 9 or 13), got 10",
        "row 1 (id 'r1'): width: expected a multiple of 16 for skyreels-v2 models "
        "(nearest: 16 or 32), got 20",
    ]
    assert got[2].startswith("row 2 (id 'r2'): overlap_history: model ")
    assert "does not take overlap_history" in got[2] and len(got) == 3
