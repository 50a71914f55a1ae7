"""Media cells at validate (pipeline/plan/media_rows.py): which families take them, every
bad file refused by row before any GPU time, content keys, derived sizes, the hash cache.
Checkpoints here are configs only (detection reads model_index.json and component configs)."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pytest

import pipeline.plan.media_rows as media_rows
from pipeline.errors import ManifestError
from pipeline.media.fit import derive_size
from pipeline.models.families import FAMILIES
from pipeline.plan.keys import compute_keys
from pipeline.plan.manifest import validate
from pipeline.plan.media_rows import MediaHashes, MediaOptions
from tests.support import media_files


def _checkpoint(root, name, transformer: dict) -> str:
    folder = root / name
    (folder / "transformer").mkdir(parents=True)
    index = {"_class_name": "WanImageToVideoPipeline", "transformer": ["diffusers", "X"]}
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "transformer" / "config.json").write_text(json.dumps(transformer))
    return str(folder)


@pytest.fixture
def models(tmp_path):
    return {
        "i2v": _checkpoint(tmp_path, "i2v", {"image_dim": 1280}),
        "flf2v": _checkpoint(tmp_path, "flf2v", {"image_dim": 1280, "pos_embed_seq_len": 514}),
    }


def _validate(rows, **options):
    columns = list(dict.fromkeys(name for row in rows for name in row))  # every row's columns
    table = pa.Table.from_pylist([{name: row.get(name) for name in columns} for row in rows])
    return validate(table, media=MediaOptions(**options)).table


def _row(i, **cells):
    return {"id": f"r{i}", "prompt": f"p{i}", "seed": i, **cells}


def _problems(rows, **options) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        _validate(rows, **options)
    return [str(p) for p in caught.value.problems]


def test_families_take_refuse_or_need_media(tmp_path, models):
    image = str(media_files.png_rgb(tmp_path, 32, 32))
    found = _problems(
        [
            _row(0, image=image),  # the tiny text model takes no image
            _row(1, model=models["i2v"]),  # image-to-video without an image
            _row(2, model=models["flf2v"], image=image),  # FLF2V without a last frame
            _row(3, model=models["i2v"], image=image, last_image=image),  # I2V: no last frame
        ]
    )
    assert len(found) == 4, found
    assert found[0].startswith("row 0 (id 'r0'): image: tiny models do not take image")
    assert found[1].startswith("row 1 (id 'r1'): image: expected a path or URL of an image")
    assert "wan2.1-flf2v models need last_image" in found[2]
    assert found[3].startswith("row 3 (id 'r3'): last_image: wan2.1-i2v models do not take")


def test_every_bad_file_is_refused_by_row_at_once(tmp_path, models):
    bad = {
        "missing": str(tmp_path / "nope.png"),
        "bomb": str(media_files.png_bomb(tmp_path)),
        "animated": str(media_files.gif_animated(tmp_path)),
        "dot": str(media_files.png_1x1(tmp_path)),
        "truncated": str(media_files.truncated_jpeg(tmp_path)),
        "text": str(media_files.text_file(tmp_path)),
        "deep": str(media_files.png_16bit(tmp_path)),
        "private": "http://169.254.169.254/latest/meta-data/image.png",
    }
    rows = [_row(i, model=models["i2v"], image=path) for i, path in enumerate(bad.values())]
    found = _problems(rows)
    assert [p.split(":")[0] for p in found] == [f"row {i} (id 'r{i}')" for i in range(len(bad))]
    assert all(": image: " in p for p in found)
    for fragment, problem in zip(
        ("no such file", "pixels", "animated", "16", "truncated", "not an image", "16-bit"),
        found,
    ):
        assert fragment.lower() in problem.lower(), problem
    assert "--allow-private-urls" in found[-1]


def test_content_not_location_keys_a_request(tmp_path, models):
    first = media_files.png_rgb(tmp_path, 32, 32, "a.png")
    copy = tmp_path / "other" / "b.png"
    copy.parent.mkdir()
    shutil.copyfile(first, copy)
    other = media_files.png_rgb(tmp_path, 32, 48, "c.png")
    sized = dict(model=models["i2v"], height=32, width=32)
    table = _validate(
        [_row(0, image=str(first), **sized), _row(1, image=str(copy), **sized)]
        + [_row(2, image=str(other), **sized)]
    )
    keys = compute_keys(table).to_pylist()
    assert keys[0] != keys[1]  # other prompts and seeds
    same = _validate([_row(0, image=str(first), **sized), _row(0, image=str(copy), **sized)][:1])
    moved = _validate([_row(0, image=str(copy), **sized)])
    assert compute_keys(same).to_pylist() == compute_keys(moved).to_pylist()
    changed = _validate([_row(0, image=str(other), **sized)])
    assert compute_keys(changed).to_pylist() != compute_keys(same).to_pylist()
    assert table["image"].to_pylist() == [str(first), str(copy), str(other)]


def test_relative_locations_resolve_against_the_manifest_folder(tmp_path, models):
    media_files.png_rgb(tmp_path, 32, 32, "frame.png")
    table = _validate([_row(0, model=models["i2v"], image="frame.png")], base=str(tmp_path))
    assert table["image"].to_pylist() == [str(tmp_path / "frame.png")]


def test_sizes_come_from_the_image_when_a_row_gives_none(tmp_path, models):
    wide = str(media_files.png_rgb(tmp_path, 1280, 720, "wide.png"))
    table = _validate(
        [
            _row(0, model=models["i2v"], image=wide),
            _row(1, model=models["i2v"], image=wide, height=480, width=480),
        ]
    )
    # Wan 2.1 I2V's area 480 * 832 at 720/1280, floored to multiples of 16.
    assert table["height"].to_pylist() == [464, 480]
    assert table["width"].to_pylist() == [832, 480]


def test_resize_policies(tmp_path, models):
    image = str(media_files.png_rgb(tmp_path, 32, 32))
    rows = [_row(0, model=models["i2v"], image=image), _row(1, model=models["i2v"], image=image)]
    rows[1]["resize"] = " PAD "
    table = _validate([*rows, _row(2)], resize="stretch")
    assert table["resize"].to_pylist() == ["stretch", "pad", None]
    rows[1]["resize"] = "zoom"
    assert "resize: expected one of crop, pad, stretch" in _problems(rows)[0]


def test_a_resume_reads_no_unchanged_file_again(tmp_path, models, monkeypatch):
    image = media_files.png_rgb(tmp_path, 32, 32)
    rows = [_row(0, model=models["i2v"], image=str(image))]
    hashes = MediaHashes()
    first = _validate(rows, hashes=hashes)
    cached = MediaHashes.from_json(hashes.to_json())

    def unexpected(*_args, **_kwargs):
        raise AssertionError("read again")

    monkeypatch.setattr(media_rows, "read_media", unexpected)
    again = _validate(rows, hashes=cached)
    assert again["image_sha256"] == first["image_sha256"] and not cached.changed
    image.write_bytes(media_files.forged_png_bytes(64, 64))  # changed: size differs
    with pytest.raises(AssertionError, match="read again"):
        _validate(rows, hashes=cached)


def test_seeds_equal_modulo_2_32_alias_only_with_the_same_image(tmp_path, models):
    first = str(media_files.png_rgb(tmp_path, 32, 32, "a.png"))
    other = str(media_files.png_rgb(tmp_path, 32, 48, "b.png"))
    sized = dict(model=models["i2v"], height=32, width=32, prompt="p")
    rows = [_row(0, image=first, **sized), _row(1, image=other, **sized)]
    rows[1]["seed"] = rows[0]["seed"] + 2**32
    table = pa.Table.from_pylist(rows)
    assert validate(table, media=MediaOptions()).warnings == ()  # other image: no alias
    rows[1]["image"] = first
    warnings = validate(pa.Table.from_pylist(rows), media=MediaOptions()).warnings
    assert [w.row for w in warnings] == [1]


def test_variants_of_a_media_row_share_its_image_and_differ_by_seed(tmp_path, models):
    """Best of N x media rows: each variant carries the row's image (same content hash,
    same fit), so the variants differ only by seed; variant 0 keeps the row's key."""
    from pipeline.plan.planner import make_plan

    image = str(media_files.png_rgb(tmp_path, 32, 32))
    table = pa.Table.from_pylist([_row(0, model=models["i2v"], image=image, resize="pad")])
    manifest = validate(table, media=MediaOptions())
    plan = make_plan(manifest, 1, variants=3)
    rows = plan.rows.to_pylist()
    assert [r["id"] for r in rows] == ["r0", "r0~v1", "r0~v2"]
    assert {(r["image"], r["image_sha256"], r["resize"]) for r in rows} == {
        (image, rows[0]["image_sha256"], "pad")
    }
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert len({r["key"] for r in rows}) == 3
    assert rows[0]["key"] == make_plan(manifest, 1).rows["key"][0].as_py()


def test_a_fixed_size_checkpoint_gets_its_size_and_refuses_others(tmp_path):
    """CogVideoX-5b-I2V's learned positional embeddings: diffusers raises on any size but
    the transformer's sample size (latent 60x90, VAE factor 8 -> 480x720), read from the
    checkpoint's configs; the 1.5 I2V (RoPE only) takes any size."""
    learned = dict(use_learned_positional_embeddings=True, sample_height=60, sample_width=90)
    fixed = _checkpoint(tmp_path, "5b-i2v", learned)
    (tmp_path / "5b-i2v" / "vae").mkdir()
    (tmp_path / "5b-i2v" / "vae" / "config.json").write_text(
        json.dumps({"block_out_channels": [128, 256, 256, 512]})
    )
    free = _checkpoint(tmp_path, "1.5-i2v", {"patch_size_t": 2})
    for folder in (fixed, free):
        index = json.loads((tmp_path / folder / "model_index.json").read_text())
        index["_class_name"] = "CogVideoXImageToVideoPipeline"
        (tmp_path / folder / "model_index.json").write_text(json.dumps(index))
    image = str(media_files.png_rgb(tmp_path, 1280, 720, "wide.png"))
    table = _validate([_row(0, model=fixed, image=image), _row(1, model=free, image=image)])
    free_size = derive_size(1280, 720, FAMILIES["cogvideox-1.5-i2v"].default_area, 16)
    sizes = list(zip(table["height"].to_pylist(), table["width"].to_pylist()))
    assert sizes == [(480, 720), free_size]  # 1.5: its default area at the image's aspect
    found = _problems([_row(0, model=fixed, image=image, height=512, width=512, num_frames=49)])
    assert found == [
        "row 0 (id 'r0'): height: expected exactly 480x720 (height x width) for this "
        "cogvideox-i2v checkpoint (learned positional embeddings: diffusers renders only the "
        "transformer's sample size), got 512x512"
    ], found
