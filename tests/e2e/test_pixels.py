"""Same request -> same pixels, whatever the run, batch-mates or position."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.cli import main
from pipeline.outputs.encode import frames_sha256
from tests.conftest import read_catalog, write_manifest

RAT = "anime, cute rat running in a forest"
RAT_SEED = 3048053658270753


def _render(tmp, name, rows, *extra):
    manifest = write_manifest(
        tmp / f"{name}.parquet",
        rows,
        pa.schema([("id", pa.string()), ("prompt", pa.string()), ("seed", pa.uint64())]),
    )
    code = main(["render", str(manifest), "--out", str(tmp / name), "--no-progress", *extra])
    assert code == 0
    return {r["id"]: r for r in read_catalog(tmp / name).to_pylist()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("pixels")
    first = [
        {"id": "rat", "prompt": RAT, "seed": RAT_SEED},
        {"id": "rat-7", "prompt": RAT, "seed": 7},
        {"id": "other", "prompt": "a red boat", "seed": 1},
    ]
    # The same requests again in another run, each with other batch-mates (the plan
    # places them; the rat's second batch is a padded one). A third run, of `first` alone,
    # proved nothing more and cost a model actor (actor counts: test_pixel_contract.py).
    second = [{"id": f"x{i}", "prompt": f"filler {i}", "seed": i} for i in range(4)]
    second += first[::-1]
    return {"a": _render(tmp, "a", first), "b": _render(tmp, "b", second)}


def test_same_request_twice_gives_identical_frames(runs):
    for item in ("rat", "rat-7", "other"):
        assert runs["a"][item]["key"] == runs["b"][item]["key"]
        assert runs["a"][item]["frames_sha256"] == runs["b"][item]["frames_sha256"]
        assert runs["a"][item]["sha256"] == runs["b"][item]["sha256"]  # bytes too


def test_other_seed_gives_other_frames(runs):
    assert runs["a"]["rat"]["frames_sha256"] != runs["a"]["rat-7"]["frames_sha256"]


def test_other_batch_mates_give_identical_frames(runs):
    for item in ("rat", "rat-7", "other"):  # the premise: a batch_id names its keys
        assert runs["a"][item]["batch_id"] != runs["b"][item]["batch_id"]
    assert runs["a"]["rat"]["key"] == runs["b"]["rat"]["key"]
    assert runs["a"]["rat"]["frames_sha256"] == runs["b"]["rat"]["frames_sha256"]


def test_catalog_matches_a_plain_diffusers_call(runs):
    """The compatibility rule: a notebook call at the same batch size and threads."""
    import torch
    from diffusers import DiffusionPipeline

    from pipeline.models.tiny import ensure_tiny_model

    torch.set_num_threads(2)
    pipe = DiffusionPipeline.from_pretrained(ensure_tiny_model())
    prompts = [RAT, "unrelated", "prompts", "here"]
    seeds = [RAT_SEED, 11, 12, 13]
    out = pipe(
        prompt=prompts,
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=4,
        guidance_scale=5.0,
        output_type="np",
        generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
    ).frames
    frames = (out[0].clip(0, 1) * 255).round().astype("uint8")
    assert frames_sha256(frames) == runs["a"]["rat"]["frames_sha256"]
