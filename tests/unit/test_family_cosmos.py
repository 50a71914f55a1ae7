"""Cosmos Predict 2.5 (pipeline/models/families/cosmos.py) on its tiny checkpoint: pixels
equal a plain diffusers call given the same pass-through safety checker (text rows with
and without a negative prompt at batch 2, a Video2World and an Image2World row), the
family is detected, its rules are refused at validate, and the guardrail design holds:
the stand-in when `cosmos_guardrail` is missing, no embedding cache when it is there
(the pipeline's prompt check never sees cached embeddings)."""

from __future__ import annotations

import types

import numpy as np
import pyarrow as pa
import pytest

from pipeline.actor.media import MediaFetcher
from pipeline.actor.renderer import Renderer
from pipeline.config import RenderSettings
from pipeline.errors import ManifestError
from pipeline.media.source import sha256_hex
from pipeline.models import resolve_model
from pipeline.models.families import cosmos
from pipeline.plan.batches import Batch, MediaInput
from pipeline.plan.manifest import validate
from tests.support import media_files
from tests.support.items import make_item
from tests.support.new_families import cases, checkpoint_dir
from tests.support.parity import THREADS, generators, plain_uint8, promptreel_frames

CASE = cases()["cosmos2.5"]
TEXTS = ("a red fox trots through fresh snow", "a small boat on a calm lake at dawn")


@pytest.fixture(scope="module")
def model():
    return checkpoint_dir(CASE.name)


@pytest.fixture(scope="module")
def plain(model):
    """The pipeline a user loads, given the same stand-in promptreel loads it with."""
    import torch
    from diffusers import DiffusionPipeline

    torch.set_num_threads(THREADS)
    pipe = DiffusionPipeline.from_pretrained(
        str(model), dtype=torch.float32, use_safetensors=True, **cosmos.load_args()
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def common(fields: dict) -> dict:
    keys = ("height", "width", "num_frames", "guidance_scale")
    return {k: fields[k] for k in keys} | {"num_inference_steps": CASE.steps}


def test_detected_with_the_checkpoints_own_frame_limit(model):
    from diffusers.pipelines.cosmos.pipeline_cosmos2_5_predict import DEFAULT_NEGATIVE_PROMPT

    family = resolve_model(str(model)).family
    assert family.name == CASE.family
    assert family.shape.max_frames == 509  # max_size 128 latents / patch 1 -> 4*127+1
    assert family.shape.max_side == 2048  # 128 patches of 2 latents of 8 px
    assert family.defaults["negative_prompt"] == DEFAULT_NEGATIVE_PROMPT


def test_the_side_limit_is_where_the_rotary_tables_end(plain):
    """A side of 128 patches renders; one patch more fails inside the call, so validate
    refuses it (test_rules_refused_at_validate)."""
    import torch

    call = dict(prompt="a lighthouse", height=16, num_frames=1, num_inference_steps=1)
    call |= dict(guidance_scale=1.0, output_type="np")
    frames = plain(width=2048, generator=torch.Generator().manual_seed(0), **call).frames
    assert np.asarray(frames).shape[-3:] == (16, 2048, 3)
    with pytest.raises(RuntimeError):
        plain(width=2048 + 16, generator=torch.Generator().manual_seed(0), **call)


@pytest.mark.parametrize("bucket", ["with_negative", "without_negative"])
def test_text_rows_equal_a_plain_call_at_batch_2(model, plain, bucket):
    fields = CASE.shape | getattr(CASE, bucket) | {"num_inference_steps": CASE.steps}
    rows = [dict(prompt=t, seed=11 + i, **fields) for i, t in enumerate(TEXTS)]
    ours = promptreel_frames(model, rows, batch_size=2)  # cached per-text embeddings
    negative = fields.get("negative_prompt", cosmos.NEGATIVE)
    frames = plain(
        prompt=list(TEXTS),
        negative_prompt=[negative] * 2,
        generator=generators(rows),
        output_type="np",
        **common(fields),
    ).frames
    for got, want in zip(ours, plain_uint8(frames), strict=True):
        assert np.array_equal(got, want)


def render_alone(model, item) -> np.ndarray:
    settings = RenderSettings(model=str(model), batch_size=1, threads=THREADS)
    [frames] = Renderer(str(model), settings).render(Batch((item,), 1))
    assert isinstance(frames, np.ndarray), frames
    return frames


def media_item(model, column: str, path, **params):
    fields = CASE.shape | CASE.with_negative | {"num_frames": 9, "num_inference_steps": 2}
    media = MediaInput(column, str(path), sha256_hex(path.read_bytes()))
    item = make_item(
        TEXTS[0],
        7,
        model=str(model),
        media=(media,),
        params=tuple(sorted(params.items())),
        **fields,
    )
    return item, fields


def plain_media_frames(plain, item, fields, **call) -> np.ndarray:
    media = MediaFetcher().inputs(item, exact_frames=False)  # what the call gets, fitted
    frames = plain(
        prompt=[item.prompt],
        negative_prompt=[item.negative_prompt],
        generator=generators([{"seed": item.seed}])[0],
        output_type="np",
        **common(fields),
        **media,
        **call,
    ).frames
    return plain_uint8(frames)[0]


def test_video2world_row_equals_a_plain_call_with_its_per_row_frames(model, plain, tmp_path):
    """A 9-frame clip continuing a 5-frame video from its last frame
    (num_latent_conditional_frames=1: the default 2 would keep 5 and move the pixels)."""
    path = media_files.video_file(tmp_path, width=48, height=32, frames=5)
    item, fields = media_item(model, "video", path, num_latent_conditional_frames=1)
    want = plain_media_frames(plain, item, fields, num_latent_conditional_frames=1)
    assert np.array_equal(render_alone(model, item), want)
    assert not np.array_equal(want, plain_media_frames(plain, item, fields))


def test_image2world_row_equals_a_plain_call(model, plain, tmp_path, monkeypatch):
    """diffusers reads the image with torchvision's to_tensor, imported only when torchvision
    is installed (this project's CPU torch cannot load it): without it both sides get the
    same to_tensor (PIL -> float CHW / 255, torchvision's own arithmetic)."""
    import diffusers.pipelines.cosmos.pipeline_cosmos2_5_predict as module
    import torch

    if not hasattr(module, "torchvision"):

        def to_tensor(picture):
            array = np.array(picture, np.uint8, copy=True)
            return torch.from_numpy(array).permute(2, 0, 1).contiguous().float().div(255)

        functional = types.SimpleNamespace(to_tensor=to_tensor)
        stub = types.SimpleNamespace(transforms=types.SimpleNamespace(functional=functional))
        monkeypatch.setattr(module, "torchvision", stub, raising=False)
    path = media_files.png_rgb(tmp_path, 48, 32)
    item, fields = media_item(model, "image", path)
    assert np.array_equal(render_alone(model, item), plain_media_frames(plain, item, fields))


def test_encode_text_is_the_in_call_encoding_whatever_the_batch(plain):
    import torch

    together, _ = plain.encode_prompt(
        prompt=list(TEXTS), do_classifier_free_guidance=False, max_sequence_length=512
    )
    for i, text in enumerate(TEXTS):
        alone = cosmos.encode_cosmos(plain, text)["prompt_embeds"]
        assert alone.shape == (1, 512, 32)  # padded to max_sequence_length, never to a mate
        assert torch.equal(alone, together[i : i + 1])


def test_the_stand_in_guardrail_and_the_cache_only_without_the_real_one(plain, monkeypatch):
    from diffusers.pipelines.cosmos.pipeline_cosmos2_5_predict import CosmosSafetyChecker

    checker = cosmos.load_args()["safety_checker"]
    assert not isinstance(checker, CosmosSafetyChecker)  # skips the video check
    assert checker.check_text_safety("anything") is True
    assert cosmos.cosmos_family(guardrail=False).encode_text is cosmos.encode_cosmos
    assert cosmos.cosmos_family(guardrail=True).encode_text is None
    monkeypatch.setattr(cosmos, "guardrail_installed", lambda: True)
    assert cosmos.load_args() == {}  # the pipeline builds the real guardrail itself
    # Why no cache with the guardrail: the pipeline checks `prompt` strings only.
    seen = []
    monkeypatch.setattr(plain.safety_checker, "check_text_safety", lambda p: not seen.append(p))
    embeds = cosmos.encode_cosmos(plain, TEXTS[1])["prompt_embeds"]
    call = dict(height=16, width=16, num_frames=1, num_inference_steps=1, guidance_scale=1.0)
    plain(prompt=[TEXTS[0]], output_type="np", **call)
    plain(prompt_embeds=embeds, output_type="np", **call)
    assert seen == [TEXTS[0]]


def refusals(rows: list[dict], model) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        columns = list(dict.fromkeys(name for row in rows for name in row))
        table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
        validate(table, default_model=str(model))
    return [str(problem) for problem in caught.value.problems]


def row(i, **fields):
    return {"id": f"r{i}", "prompt": "a prompt", "seed": i, **fields}


def test_rules_refused_at_validate(model, tmp_path):
    image = str(media_files.png_rgb(tmp_path, 48, 32))
    got = refusals(
        [
            row(0, num_frames=6),
            row(1, height=40),
            row(2, num_frames=513),
            row(3, num_latent_conditional_frames=1),
            row(4, image=image, num_latent_conditional_frames=3),
            row(5, image=image, conditional_frame_timestep=float("inf")),
            row(6, num_frames=9, height=32, width=48),  # fine
            row(7, image=image, num_latent_conditional_frames=1),  # fine
            row(8, num_frames=1, height=16, width=2064),
            row(9, num_frames=1, height=16, width=2048),  # fine
        ],
        model,
    )
    assert got == [
        "row 0 (id 'r0'): num_frames: expected 4k+1 frames for cosmos2.5 models "
        "(nearest: 5 or 9), got 6",
        "row 1 (id 'r1'): height: expected a multiple of 16 for cosmos2.5 models "
        "(nearest: 32 or 48), got 40",
        "row 2 (id 'r2'): num_frames: expected at most 509 frames for cosmos2.5 models; "
        "the transformer's rotary embedding covers 128 latent frames, got 513",
        "row 3 (id 'r3'): num_latent_conditional_frames: only rows that give "
        "image or video take num_latent_conditional_frames",
        "row 4 (id 'r4'): num_latent_conditional_frames: expected 1 or 2, got 3",
        "row 5 (id 'r5'): conditional_frame_timestep: expected a finite number (below 0: "
        "the condition frames take the noise's timestep), got inf",
        "row 8 (id 'r8'): width: expected at most 2048 for cosmos2.5 models (the "
        "transformer's rotary embedding covers 128 patches per side), got 2064",
    ]


def test_job_json_records_the_guardrail_and_a_resume_refuses_its_change(model):
    """The guardrail blurs faces (pixels), so its presence is recorded with the library
    versions of a run with Cosmos rows, and a resume on a machine where it differs is
    refused; runs without Cosmos rows record nothing of it."""
    from pipeline.errors import ConfigError
    from pipeline.rundir.jobjson import VERSIONS, resumed_record, run_record

    absent = run_record([str(model)])
    assert absent[VERSIONS][cosmos.GUARDRAIL_PACKAGE] is None  # not installed here
    assert cosmos.GUARDRAIL_PACKAGE not in run_record(["tiny"])[VERSIONS]
    # an older run dir of other models, resumed with Cosmos rows added: nothing differs
    older = run_record(["tiny"])
    assert resumed_record("run", older, absent, False)[VERSIONS] == absent[VERSIONS]
    installed = {**absent, VERSIONS: {**absent[VERSIONS], cosmos.GUARDRAIL_PACKAGE: "0.3.2"}}
    with pytest.raises(ConfigError, match="cosmos_guardrail"):
        resumed_record("run", absent, installed, False)


def test_a_checkpoint_that_needs_torchvision_says_so_at_load(plain, monkeypatch):
    """Released checkpoints pad with torchvision (concat_padding_mask): without it, a clear
    error at load instead of a NameError in the first render."""
    import diffusers.utils

    from pipeline.errors import ConfigError

    cosmos.need_torchvision(plain)  # the tiny checkpoint does not pad: loads anywhere
    released = types.SimpleNamespace(
        transformer=types.SimpleNamespace(config={"concat_padding_mask": True})
    )
    monkeypatch.setattr(diffusers.utils, "is_torchvision_available", lambda: False)
    with pytest.raises(ConfigError, match="needs torchvision"):
        cosmos.need_torchvision(released)
    monkeypatch.setattr(diffusers.utils, "is_torchvision_available", lambda: True)
    cosmos.need_torchvision(released)
