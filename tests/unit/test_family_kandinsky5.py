"""Kandinsky 5.0 video (pipeline/models/families/kandinsky5.py) on tiny checkpoints
(tests/support/new_families/kandinsky5.py): Lite 5s, Lite 10s (NABLA) and I2V (NABLA).

Each row renders alone (the Qwen text is padded to a batch's longest prompt, which moves
pixels), its text from the embedding cache (one text per call); its frames equal a plain
diffusers call, NABLA checkpoints with the flex attention backend diffusers' docs ask for.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from pipeline.errors import ManifestError
from pipeline.models import resolve_model
from pipeline.models.families import FAMILIES, family_for_checkpoint, family_for_hub_id
from pipeline.models.families.base import Checkpoint
from pipeline.models.families.kandinsky5 import FAMILIES as KANDINSKY5_FAMILIES
from pipeline.models.families.kandinsky5 import NEGATIVE, encode_kandinsky
from pipeline.plan.manifest import validate
from tests.support.new_families import checkpoint_dir
from tests.support.new_families.kandinsky5 import CASES
from tests.support.parity import generators, plain_pipe, plain_uint8, promptreel_frames

T2V = [case for case in CASES if case.family != "kandinsky5-i2v"]
I2V = next(case for case in CASES if case.family == "kandinsky5-i2v")
SHORT = "a red fox"
LONG = "a red fox runs through deep snow at dawn, mist between the pines, slow pan"
FAMILY_NAMES = tuple(f.name for f in KANDINSKY5_FAMILIES)


@pytest.fixture(scope="module", autouse=True)
def active_attention_backend():
    """Setting flex on a NABLA transformer sets diffusers' process-wide active backend too:
    put it back for the tests that run after these."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    before = _AttentionBackendRegistry._active_backend
    yield
    _AttentionBackendRegistry.set_active_backend(before)


@pytest.fixture(scope="module")
def dirs():
    return {case.name: checkpoint_dir(case.name) for case in CASES}


def rows_of(case, fields: dict) -> list[dict]:
    common = dict(case.shape, num_inference_steps=case.steps, **fields)
    return [dict(prompt=SHORT, seed=3, **common), dict(prompt=LONG, seed=4, **common)]


def plain_pipe_as_documented(model_dir):
    """The pipeline a user loads, with flex attention on NABLA transformers (the docs)."""
    pipe = plain_pipe(model_dir)
    if pipe.transformer.config.attention_type == "nabla":
        pipe.transformer.set_attention_backend("flex")
    return pipe


def plain_call(pipe, row: dict, generator, **media):
    frames = pipe(
        prompt=row["prompt"],
        negative_prompt=row.get("negative_prompt", NEGATIVE),
        height=row["height"],
        width=row["width"],
        num_frames=row["num_frames"],
        num_inference_steps=row["num_inference_steps"],
        guidance_scale=row["guidance_scale"],
        generator=generator,
        output_type="np",
        **media,
    ).frames
    return plain_uint8(frames)[0]


@pytest.mark.parametrize("negative", [True, False], ids=["negative", "no-negative"])
@pytest.mark.parametrize("case", T2V, ids=[c.name for c in T2V])
def test_frames_equal_a_plain_call_of_each_row_alone(dirs, case, negative):
    model = dirs[case.name]
    rows = rows_of(case, case.with_negative if negative else case.without_negative)
    got = promptreel_frames(model, rows, batch_size=2)
    pipe = plain_pipe_as_documented(model)
    for frames, row, generator in zip(got, rows, generators(rows)):
        expected = plain_call(pipe, row, generator)
        assert frames.shape == expected.shape == (row["num_frames"], row["height"], row["width"], 3)
        assert np.array_equal(frames, expected)


def test_i2v_frames_equal_a_plain_call_with_load_image(dirs, tmp_path):
    from diffusers.utils import load_image

    from pipeline.actor.renderer import Renderer
    from pipeline.config import RenderSettings
    from pipeline.plan.batches import Batch, Item
    from pipeline.plan.planner import make_plan
    from pipeline.schema import ITEM_FIELDS
    from tests.support.media_files import png_rgb

    model = str(dirs[I2V.name])
    height, width = I2V.shape["height"], I2V.shape["width"]
    image = str(png_rgb(tmp_path, width, height))
    row = rows_of(I2V, I2V.with_negative)[0] | dict(model=model, image=image)
    plan = make_plan(validate(pa.Table.from_pylist([row])), 1)
    item = Item.from_record(plan.items.select(ITEM_FIELDS).to_pylist()[0])
    renderer = Renderer(model, RenderSettings(model=model, batch_size=1, threads=1))
    got = renderer.render(Batch((item,), 1))[0]
    pipe = plain_pipe_as_documented(model)
    expected = plain_call(pipe, row, generators([row])[0], image=load_image(image))
    assert got.shape == expected.shape == (row["num_frames"], height, width, 3)
    assert np.array_equal(got, expected)


def test_a_batch_call_pads_the_text_so_rows_render_alone(dirs):
    """Why batch_pixel_safe is False: beside a longer prompt, a short one moves."""
    case = T2V[0]
    rows = rows_of(case, case.without_negative)
    pipe = plain_pipe(dirs[case.name])
    batch = pipe(
        prompt=[r["prompt"] for r in rows],
        generator=generators(rows),
        output_type="np",
        **{k: v for k, v in rows[0].items() if k not in ("prompt", "seed")},
    ).frames
    alone = plain_call(pipe, rows[0], generators(rows)[0])
    assert not np.array_equal(plain_uint8(batch)[0], alone)
    assert all(not resolve_model(str(d)).family.batch_pixel_safe for d in dirs.values())


def test_encode_text_is_the_calls_own_encoding(dirs):
    import torch

    pipe = plain_pipe(dirs[T2V[0].name])
    got = encode_kandinsky(pipe, f"  {LONG} ")  # the pipeline cleans whitespace itself
    qwen, clip, cu_seqlens = pipe.encode_prompt([LONG], max_sequence_length=512)
    assert got["prompt_embeds_qwen"].shape[0] == got["prompt_embeds_clip"].shape[0] == 1
    assert torch.equal(got["prompt_embeds_qwen"], qwen)
    assert torch.equal(got["prompt_embeds_clip"], clip)
    assert got["prompt_cu_seqlens"].tolist() == cu_seqlens.tolist() == [0, qwen.shape[1]]


def test_nabla_needs_flex_which_loading_sets(dirs):
    from pipeline.models.loader import load_pipeline

    model = str(dirs["kandinsky5-10s"])
    case = next(c for c in CASES if c.name == "kandinsky5-10s")
    row = rows_of(case, case.without_negative)[0]
    from diffusers.models.attention_dispatch import attention_backend

    # diffusers' default backend (the tests above left the process-wide one at flex)
    with attention_backend("native"), pytest.raises(AttributeError, match="BlockMask"):
        plain_call(plain_pipe(model), row, generators([row])[0])
    from pipeline.config import RenderSettings

    pipe = load_pipeline(resolve_model(model), RenderSettings(model=model))
    processors = {
        m.processor._attention_backend
        for m in pipe.transformer.modules()
        if hasattr(m, "processor")
    }
    assert {str(getattr(p, "value", p)) for p in processors} == {"flex"}


def test_checkpoints_are_detected_as_their_family(dirs):
    for case in CASES:
        assert resolve_model(str(dirs[case.name])).family.name == case.family


@pytest.mark.parametrize(
    "repo, transformer, family",
    [
        ("T2V-Lite-sft-5s", "kandinsky5", "kandinsky5"),
        ("T2V-Lite-pretrain-5s", "kandinsky5", "kandinsky5"),
        ("T2V-Lite-nocfg-5s", "kandinsky5", "kandinsky5-nocfg"),
        ("T2V-Lite-distilled16steps-5s", "kandinsky5", "kandinsky5-distilled"),
        ("T2V-Lite-sft-10s", "kandinsky5-10s", "kandinsky5-10s"),
        ("T2V-Lite-nocfg-10s", "kandinsky5-10s", "kandinsky5-10s-nocfg"),
        ("T2V-Lite-distilled16steps-10s", "kandinsky5-10s", "kandinsky5-10s-distilled"),
        ("T2V-Pro-sft-5s", "kandinsky5-10s", "kandinsky5-pro"),  # + model_dim 4096 below
        ("T2V-Lite-nocfg-10s", None, "kandinsky5-10s-nocfg"),  # configs not on disk
        ("T2V-Pro-sft-5s", None, "kandinsky5-pro"),
    ],
)
def test_variants_by_config_then_by_the_snapshots_repo_name(
    dirs, tmp_path, repo, transformer, family
):
    """A hub snapshot's path names its repo: nocfg and distilled share the sft configs."""
    repo_id = f"kandinskylab/Kandinsky-5.0-{repo}-Diffusers"
    root = tmp_path / f"models--{repo_id.replace('/', '--')}" / "snapshots" / "0123abc"
    root.mkdir(parents=True)
    index = json.loads((dirs["kandinsky5"] / "model_index.json").read_text())
    if transformer is not None:
        (root / "transformer").mkdir()
        config = json.loads((dirs[transformer] / "transformer" / "config.json").read_text())
        if "Pro" in repo:
            config["model_dim"] = 4096
        (root / "transformer" / "config.json").write_text(json.dumps(config))
    found = family_for_checkpoint(Checkpoint(index, root))
    assert found.name == family
    assert found.shape.side_multiple == (128 if "10s" in repo or "Pro" in repo else 16)
    assert family_for_hub_id(repo_id).name == family  # no model_index.json at all


def test_i2v_is_detected_by_class_and_its_hub_id(dirs):
    family = resolve_model(str(dirs[I2V.name])).family
    assert family.media_required == family.media_inputs == ("image",)
    hub = family_for_hub_id("kandinskylab/Kandinsky-5.0-I2V-Pro-sft-5s-Diffusers")
    assert hub.name == family.name == "kandinsky5-i2v"


def test_model_card_defaults():
    """(num_frames, steps, guidance, height, width) per variant (kandinsky5.py cites them)."""
    fields = ("num_frames", "num_inference_steps", "guidance_scale", "height", "width")
    found = {n: tuple(FAMILIES[n].defaults[f] for f in fields) for n in FAMILY_NAMES}
    assert found == {
        "kandinsky5": (121, 50, 5.0, 512, 768),
        "kandinsky5-nocfg": (121, 50, 1.0, 512, 768),
        "kandinsky5-distilled": (121, 16, 1.0, 512, 768),
        "kandinsky5-10s": (241, 50, 5.0, 512, 768),
        "kandinsky5-10s-nocfg": (241, 50, 1.0, 512, 768),
        "kandinsky5-10s-distilled": (241, 16, 1.0, 512, 768),
        "kandinsky5-pro": (121, 50, 5.0, 768, 1024),
        "kandinsky5-i2v": (121, 50, 5.0, 512, 768),
    }


def refusals(rows: list[dict], model: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        columns = list(dict.fromkeys(name for row in rows for name in row))
        validate(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]), model)
    return [str(problem) for problem in caught.value.problems]


def row(i, **fields):
    return {"id": f"r{i}", "prompt": "a prompt", "seed": i, **fields}


def test_rules_refused_at_validate(dirs):
    got = refusals(
        [
            row(0, num_frames=8),  # diffusers would render 9
            row(1, height=40),
            row(2, num_frames=513),
            row(3, width=2064),  # a multiple of 16 past the RoPE tables
            row(4, num_frames=9, height=32, width=2048),  # fine
        ],
        str(dirs["kandinsky5"]),
    )
    assert got == [
        "row 0 (id 'r0'): num_frames: expected 4k+1 frames for kandinsky5 models "
        "(nearest: 5 or 9), got 8",
        "row 1 (id 'r1'): height: expected a multiple of 16 for kandinsky5 models "
        "(nearest: 32 or 48), got 40",
        "row 2 (id 'r2'): num_frames: expected at most 509 frames for kandinsky5 models; "
        "the transformer's RoPE tables hold 128 latent frames, got 513",
        "row 3 (id 'r3'): width: expected at most 2048 for kandinsky5 models "
        "(the transformer's RoPE tables hold 128 patches of 16 px), got 2064",
    ]
    got = refusals([row(0, width=192), row(1, height=128, width=256)], str(dirs["kandinsky5-10s"]))
    assert got == [
        "row 0 (id 'r0'): width: expected a multiple of 128 for kandinsky5-10s models "
        "(nearest: 128 or 256), got 192",
    ]


def test_i2v_rows_without_an_image_or_under_17_frames_are_refused(dirs, tmp_path):
    from tests.support.media_files import png_rgb

    image = str(png_rgb(tmp_path, 32, 32))
    rows = [row(0, height=32, width=32, num_frames=17)]  # no image
    rows += [row(1, height=32, width=32, num_frames=13, image=image)]  # NaN in diffusers
    rows += [row(2, height=32, width=32, num_frames=17, image=image)]  # fine
    got = refusals(rows, str(dirs[I2V.name]))
    assert len(got) == 2 and got[0].startswith("row 0 (id 'r0'): image: ")
    assert got[1] == (
        "row 1 (id 'r1'): num_frames: expected at least 17 frames for kandinsky5-i2v models; "
        "its first-frame normalisation needs 5 latent frames: fewer render NaN, got 13"
    )


def test_no_attention_lane_where_the_backend_is_fixed():
    for name in FAMILY_NAMES:
        nabla = FAMILIES[name].shape.side_multiple == 128
        assert ("attention" in FAMILIES[name].lanes) != nabla, name
