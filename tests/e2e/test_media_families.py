"""Image-to-video families beyond Wan: LTX-Video, CogVideoX 5B I2V and 1.5 I2V, and
HunyuanVideo-I2V (token_replace and the 33-channel latent_concat), each on a tiny local
checkpoint (tests/support/checkpoints.py I2V_BUILDERS). One manifest with a row per
family, rendered once on the local Ray; each row's frames equal a plain diffusers call with
`load_image`, passing every family parameter the catalog records as applied. A row of
each family without an image is refused at validate, naming the row and `image`."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.actor.renderer import to_uint8
from pipeline.cli import main
from pipeline.errors import ManifestError
from pipeline.models.families import FAMILIES as REGISTRY
from pipeline.outputs.encode import frames_sha256
from pipeline.plan.manifest import validate
from tests.conftest import read_catalog, write_manifest
from tests.support.checkpoints import checkpoint_dir
from tests.support.media_files import png_rgb

THREADS, STEPS, SEED = 2, 2, 11
NEGATIVE = "blurry, static"
SHAPES = {  # (height, width, num_frames): the smallest each family takes
    "ltx-i2v": (32, 32, 9),
    "cogvideox-i2v": (16, 16, 9),  # its tiny sample size: the only size 5B I2V renders
    "cogvideox-1.5-i2v": (16, 16, 9),
    "hunyuan-i2v": (16, 16, 5),
    "hunyuan-i2v-33ch": (16, 16, 5),  # called with 9 frames: it drops its first 4
}
FAMILIES = tuple(SHAPES)
GUIDANCE = {"ltx-i2v": 3.0, "cogvideox-i2v": 6.0, "cogvideox-1.5-i2v": 6.0, "hunyuan-i2v": 6.0}
GUIDANCE["hunyuan-i2v-33ch"] = 6.0
# Family parameters a row gives (the others take the family's defaults, also recorded):
# LTX decodes at another timestep; Hunyuan's true CFG encodes the negative with a black
# image in a second pass.
GIVEN = {"ltx-i2v": {"decode_timestep": 0.1}, "hunyuan-i2v": {"true_cfg_scale": 2.0}}
FLAGS = ("--batch-size", "2", "--threads", str(THREADS), "--no-progress")


def family_row(name: str, image) -> dict:
    height, width, frames = SHAPES[name]
    row = dict(id=name, prompt=f"{name}: a fox runs", seed=SEED, negative_prompt=NEGATIVE)
    row |= dict(model=str(checkpoint_dir(name)), image=str(image), height=height, width=width)
    row |= dict(num_frames=frames, num_inference_steps=STEPS, guidance_scale=GUIDANCE[name])
    return row | GIVEN.get(name, {})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, ray_local):
    """(exit code, catalog, images by family) of one render of every family's row."""
    tmp = tmp_path_factory.mktemp("media-families")
    images = {
        name: png_rgb(tmp, SHAPES[name][1], SHAPES[name][0], f"{name}.png") for name in FAMILIES
    }
    rows = [family_row(name, images[name]) for name in FAMILIES]
    manifest = write_manifest(tmp / "m.parquet", rows)
    out = tmp / "run"
    code = main(["render", str(manifest), "--out", str(out), *FLAGS])
    return code, read_catalog(out), images


def catalog_row(catalog, name: str) -> dict:
    return catalog.filter(pc.equal(catalog["id"], name)).to_pylist()[0]


def plain_frames(name: str, image, row: dict):
    """`pipe(image=load_image(path), ...)` as a notebook user writes it, with the family
    parameters the catalog records as applied (and, for the 33-channel Hunyuan, the 4
    frames more it needs to return the clip's num_frames)."""
    import torch
    from diffusers import DiffusionPipeline
    from diffusers.utils import load_image

    torch.set_num_threads(THREADS)
    pipe = DiffusionPipeline.from_pretrained(str(checkpoint_dir(name)))
    pipe.set_progress_bar_config(disable=True)
    height, width, frames = SHAPES[name]
    params = {p: row[p] for p in REGISTRY[name].param_names if row[p] is not None}
    assert set(params) == set(REGISTRY[name].param_names)  # each one recorded
    frames = pipe(
        image=load_image(str(image)),
        prompt=f"{name}: a fox runs",
        negative_prompt=NEGATIVE,
        generator=torch.Generator("cpu").manual_seed(SEED),
        height=height,
        width=width,
        num_frames=frames + REGISTRY[name].call_frames_extra,
        num_inference_steps=STEPS,
        guidance_scale=GUIDANCE[name],
        output_type="np",
        **params,
    ).frames[0]
    return to_uint8(frames)


def test_checkpoints_are_detected_as_their_family():
    from pipeline.models import resolve_model

    for name in FAMILIES:
        family = resolve_model(str(checkpoint_dir(name))).family
        assert family.name == name
        assert family.media_required == ("image",) and family.media_inputs == ("image",)
        assert not family.batch_pixel_safe


def test_every_family_row_renders(rendered):
    code, catalog, images = rendered
    failed = {r["id"]: r.get("error") for r in catalog.to_pylist() if r["status"] != "ok"}
    assert failed == {} and code == 0
    for name in FAMILIES:
        row = catalog_row(catalog, name)
        assert row["image"] == str(images[name]) and len(row["image_sha256"]) == 64
        assert (row["height"], row["width"], row["num_frames"]) == SHAPES[name]


@pytest.mark.parametrize("name", FAMILIES)
def test_frames_equal_a_plain_diffusers_call_with_load_image(rendered, name):
    _, catalog, images = rendered
    row = catalog_row(catalog, name)
    assert row["status"] == "ok", row.get("error")
    assert row["frames_sha256"] == frames_sha256(plain_frames(name, images[name], row))


@pytest.mark.parametrize("name", FAMILIES)
def test_a_row_without_an_image_is_refused_naming_the_row_and_image(name):
    height, width, frames = SHAPES[name]
    row = dict(id=f"{name}-bare", prompt="a fox", seed=1, model=str(checkpoint_dir(name)))
    row |= dict(height=height, width=width, num_frames=frames)
    with pytest.raises(ManifestError) as caught:
        validate(pa.Table.from_pylist([row]))
    assert caught.value.exit_code == 2
    found = [str(p) for p in caught.value.problems]
    assert len(found) == 1, found
    assert found[0].startswith(f"row 0 (id '{name}-bare'): image: "), found
    assert f"{name} models need image" in found[0]
