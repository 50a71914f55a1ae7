"""Every family end to end on a tiny local checkpoint (tests/support/checkpoints.py): one render run
over a manifest mixing all of them, pixel parity with a plain diffusers call, batch-mates,
and each family's rules refused at validate."""

from __future__ import annotations

import hashlib
import json

import fsspec
import numpy as np
import pyarrow as pa
import pytest

from pipeline.actor.renderer import to_uint8
from pipeline.cli import main
from pipeline.errors import ManifestError
from pipeline.outputs.encode import decode_clip
from pipeline.plan.manifest import validate
from tests.conftest import read_catalog, run_cli, write_manifest
from tests.support.checkpoints import BUILDERS, DETECTED_FAMILY, checkpoint_dir
from tests.support.runs import render_actors_used

THREADS, STEPS, GUIDANCE = 2, 2, 5.0
NEGATIVE = "blurry, static"
SHAPES = {  # (height, width, num_frames): the smallest each family takes
    "wan2.1": (16, 16, 5),
    "wan2.2-a14b": (16, 16, 5),
    "wan2.2-ti2v": (32, 32, 5),
    "ltx": (32, 32, 9),
    "ltx-condition": (32, 32, 9),
    "cogvideox": (16, 16, 9),
}
# Family parameters as a notebook user would pass them: given in the manifest, or defaults.
GIVEN = {"wan2.2-a14b": {"guidance_scale_2": 2.0}, "ltx": {"decode_timestep": 0.1}}
CALL_ARGS = {
    "wan2.2-a14b": {"guidance_scale_2": 2.0},
    "ltx": {"decode_timestep": 0.1, "decode_noise_scale": 0.025},
    "ltx-condition": {"decode_timestep": 0.05, "decode_noise_scale": 0.025},
}
# Measured on this CPU: an item's frames do not depend on its batch-mates, but in the tiny
# CogVideoX (time_embed_dim 2, a width torch's CPU kernels finish in a scalar loop) they
# depend on its position in the batch, by at most this many uint8 levels.
POSITION_TOLERANCE = {"cogvideox": 2}


def frames_hash(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(to_uint8(frames)).tobytes()).hexdigest()


def family_rows(name: str) -> list[dict]:
    height, width, frames = SHAPES[name]
    common = dict(model=str(checkpoint_dir(name)), height=height, width=width)
    common |= dict(num_frames=frames, num_inference_steps=STEPS, guidance_scale=GUIDANCE)
    return [
        {
            "id": f"{name}-a",
            "prompt": f"{name}: a red fox",
            "seed": 11,
            "negative_prompt": "",
            **common,
            **GIVEN.get(name, {}),
        },
        {
            "id": f"{name}-b",
            "prompt": f"{name}: waves at dusk",
            "seed": 12,
            "negative_prompt": NEGATIVE,
            **common,
            **GIVEN.get(name, {}),
        },
    ]


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, ray_local):
    """All six families in one manifest, one render run, batch size 2, cache on."""
    tmp = tmp_path_factory.mktemp("families")
    rows = [row for name in BUILDERS for row in family_rows(name)]
    manifest = write_manifest(tmp / "m.parquet", rows)
    args = [
        "render",
        str(manifest),
        "--out",
        str(tmp / "run"),
        "--batch-size",
        "2",
        "--actors",
        "1",
    ]
    code = main([*args, "--threads", str(THREADS), "--no-progress"])
    return tmp / "run", rows, code


@pytest.fixture(scope="module")
def plain_pipes():
    import torch
    from diffusers import DiffusionPipeline

    torch.set_num_threads(THREADS)  # as the render actors pin it
    pipes = {}
    for name in BUILDERS:
        pipe = DiffusionPipeline.from_pretrained(
            str(checkpoint_dir(name)), dtype=torch.float32, use_safetensors=True
        )
        pipe.set_progress_bar_config(disable=True)
        pipes[name] = pipe
    return pipes


def plain_call(pipe, name, requests) -> list[np.ndarray]:
    """`pipe(prompt=[...], generator=[CPU generators], output_type="np")`, as in a notebook."""
    import torch

    height, width, frames = SHAPES[name]
    out = pipe(
        prompt=[r[0] for r in requests],
        negative_prompt=[r[1] for r in requests],
        generator=[torch.Generator("cpu").manual_seed(r[2]) for r in requests],
        height=height,
        width=width,
        num_frames=frames,
        num_inference_steps=STEPS,
        guidance_scale=GUIDANCE,
        output_type="np",
        **CALL_ARGS.get(name, {}),
    )
    return list(out.frames)


def test_every_family_renders_every_row_to_the_requested_shape(mixed_run):
    run, rows, code = mixed_run
    assert code == 0
    catalog = read_catalog(run)
    assert catalog["status"].to_pylist() == ["ok"] * len(rows) == ["ok"] * 12
    for row in catalog.to_pylist():
        with fsspec.open(row["uri"], "rb") as handle:
            frames = decode_clip(handle.read())
        assert frames.shape == (row["num_frames"], row["height"], row["width"], 3)
    by_id = {row["id"]: row for row in catalog.to_pylist()}
    # Family parameters are catalog columns: given, defaulted, or null where not taken.
    assert by_id["wan2.2-a14b-a"]["guidance_scale_2"] == 2.0
    assert by_id["ltx-a"]["decode_timestep"] == 0.1
    assert by_id["ltx-condition-a"]["decode_timestep"] == 0.05
    assert by_id["wan2.1-a"]["guidance_scale_2"] is None
    assert by_id["cogvideox-a"]["decode_noise_scale"] is None
    # One actor (--actors 1) loaded the six models in turn: no process per model.
    assert render_actors_used(run) == 1
    seconds = {n: by_id[f"{n}-a"]["render_s"] for n in BUILDERS}  # per item of its batch
    print("seconds per item:", json.dumps({n: round(s, 2) for n, s in seconds.items()}))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_frames_equal_a_plain_diffusers_call(mixed_run, plain_pipes, name):
    """Same batch (planned: sorted by key), same threads: the same frames, with the empty
    negative prompt (row a) and a given one (row b); embeddings came from the cache."""
    run, _, _ = mixed_run
    catalog = [r for r in read_catalog(run).to_pylist() if r["id"].rsplit("-", 1)[0] == name]
    catalog.sort(key=lambda r: r["key"])  # the planned batch's order
    requests = [(r["prompt"], r["negative_prompt"], r["seed"]) for r in catalog]
    expected = [frames_hash(f) for f in plain_call(plain_pipes[name], name, requests)]
    assert [r["frames_sha256"] for r in catalog] == expected


@pytest.mark.parametrize("name", list(BUILDERS))
def test_same_request_among_other_batch_mates(mixed_run, plain_pipes, name):
    """Row a was rendered with b as its batch-mate: with c instead, at the same position,
    the same frames_sha256; at the other position, within the measured tolerance."""
    run, _, _ = mixed_run
    rows = sorted(
        (r for r in read_catalog(run).to_pylist() if r["id"].rsplit("-", 1)[0] == name),
        key=lambda r: r["key"],  # the planned batch's order
    )
    position = [r["id"] for r in rows].index(f"{name}-a")
    a = (rows[position]["prompt"], rows[position]["negative_prompt"], rows[position]["seed"])
    c = (f"{name}: a city at night", "grey", 13)
    same = [a, c] if position == 0 else [c, a]
    same_frames = plain_call(plain_pipes[name], name, same)[position]
    other_frames = plain_call(plain_pipes[name], name, same[::-1])[1 - position]
    assert frames_hash(same_frames) == rows[position]["frames_sha256"]
    moved = np.abs(to_uint8(other_frames).astype(int) - to_uint8(same_frames).astype(int))
    assert moved.max() <= POSITION_TOLERANCE.get(name, 0)


def test_checkpoints_are_detected_as_their_family():
    from pipeline.models import resolve_model

    for name, family in DETECTED_FAMILY.items():
        assert resolve_model(str(checkpoint_dir(name))).family.name == family


def table_of(rows: list[dict]) -> pa.Table:
    columns = list(dict.fromkeys(name for row in rows for name in row))  # union, in order
    return pa.Table.from_pylist([{name: row.get(name) for name in columns} for row in rows])


def problems(rows: list[dict]) -> list[tuple[int, str, str]]:
    with pytest.raises(ManifestError) as caught:
        validate(table_of(rows))
    return [(p.row, p.field, str(p)) for p in caught.value.problems]


def test_each_family_rule_is_refused_with_row_field_and_nearest_values():
    d = {name: str(checkpoint_dir(name)) for name in BUILDERS}
    rows = [
        {"model": d["wan2.2-ti2v"], "height": 48, "width": 64, "num_frames": 5},  # 16 not 32
        {"model": d["wan2.1"], "height": 48, "width": 40, "num_frames": 7},
        {"model": d["ltx"], "height": 32, "width": 48, "num_frames": 13},
        {
            "model": d["ltx-condition"],
            "height": 32,
            "width": 32,
            "num_frames": 9,
            "decode_timestep": 1.5,
        },
        {"model": d["cogvideox"], "height": 16, "width": 24, "num_frames": 13},  # 4k+1 only
        {
            "model": d["wan2.1"],
            "height": 16,
            "width": 16,
            "num_frames": 5,
            "guidance_scale_2": 2.0,
        },  # Wan 2.1 has one expert
        {
            "model": d["wan2.2-a14b"],
            "height": 16,
            "width": 16,
            "num_frames": 5,
            "guidance_scale_2": -1.0,
        },
        {
            "model": d["cogvideox"],
            "height": 16,
            "width": 16,
            "num_frames": 9,
            "decode_timestep": 0.1,
        },
    ]
    rows = [{"prompt": "p", "seed": i, **row} for i, row in enumerate(rows)]
    found = problems(rows)
    assert [(row, field) for row, field, _ in found] == [
        (0, "height"),
        (1, "width"),
        (1, "num_frames"),
        (2, "width"),
        (2, "num_frames"),
        (3, "decode_timestep"),
        (4, "width"),
        (4, "num_frames"),
        (5, "guidance_scale_2"),
        (6, "guidance_scale_2"),
        (7, "decode_timestep"),
    ]
    text = "\n".join(message for _, _, message in found)
    assert "multiple of 32 for wan2.2-ti2v models (nearest: 32 or 64), got 48" in text
    assert "4k+1 frames for wan models (nearest: 5 or 9), got 7" in text
    assert "8k+1 frames for ltx models (nearest: 9 or 17), got 13" in text
    assert "8k+1 frames for cogvideox models (nearest: 9 or 17), got 13" in text
    assert "decode_timestep: expected a number in 0..1, got 1.5" in text
    assert "(wan family) does not take guidance_scale_2; its family parameters: none" in text
    assert "(cogvideox family) does not take decode_timestep" in text


def test_unsupported_pipeline_class_lists_the_supported_ones(tmp_path):
    model = tmp_path / "foo"
    model.mkdir()
    (model / "model_index.json").write_text(json.dumps({"_class_name": "FooVideoPipeline"}))
    found = problems([{"prompt": "p", "seed": 1, "model": str(model)}])
    assert found[0][1] == "model"
    assert "unsupported pipeline class 'FooVideoPipeline'; supported: " in found[0][2]
    assert "WanPipeline" in found[0][2] and "WanImageToVideoPipeline" in found[0][2]
    assert "LTXConditionPipeline" in found[0][2] and "CogVideoXPipeline" in found[0][2]


def test_typed_non_text_prompts_are_refused_and_csv_prompts_are_text(tmp_path):
    table = pa.table({"prompt": pa.array([7, 8]), "seed": [1, 2]})
    assert [(r, f) for r, f, _ in problems(table.to_pylist())] == [(0, "prompt"), (1, "prompt")]
    with pytest.raises(ManifestError) as caught:
        validate(pa.table({"prompt": ["ok", "ok"], "negative_prompt": [1.5, None], "seed": [1, 2]}))
    assert [(p.row, p.field) for p in caught.value.problems] == [(0, "negative_prompt")]
    (tmp_path / "m.jsonl").write_text('{"prompt": "fine", "seed": 1}\n{"prompt": 42, "seed": 2}\n')
    (tmp_path / "m.csv").write_text("prompt,seed\n123,1\n")
    result = run_cli("validate", tmp_path / "m.jsonl")
    assert result.returncode == 2 and "row 1: prompt: expected text, got 42" in result.stderr
    assert run_cli("validate", tmp_path / "m.csv").returncode == 0


def test_family_params_in_the_key_and_wan_keys_unchanged(tmp_path):
    from pipeline.plan.keys import canonical_requests

    d = str(checkpoint_dir("wan2.2-a14b"))
    rows = [
        {"prompt": "p", "seed": 1},
        {"prompt": "p", "seed": 1, "model": d},
        {"prompt": "p", "seed": 1, "model": d, "guidance_scale_2": 2.5},
    ]
    canonical = canonical_requests(validate(table_of(rows)).table).to_pylist()
    assert canonical[0].startswith("promptreel-key-v2\x1f")  # no family params: as before
    assert canonical[1].endswith("\x1fguidance_scale_2=3.0")  # the A14B default is keyed
    assert canonical[2].endswith("\x1fguidance_scale_2=2.5")


def test_models_command_lists_every_family():
    result = run_cli("models", "--json")
    assert result.returncode == 0
    families = {f["family"]: f for f in json.loads(result.stdout)}
    assert set(DETECTED_FAMILY.values()) <= set(families)
    assert families["wan2.2-ti2v"]["rules"] == "frames 4k+1, sides multiple of 32"
    assert families["wan2.2-a14b"]["params"]["guidance_scale_2"]["default"] == 3.0
    assert "promptreel models" in open("manifests/SCHEMA.md").read()


def test_ftfy_is_installed_so_every_machine_tokenizes_alike():
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean
    from diffusers.utils import is_ftfy_available

    assert is_ftfy_available()
    assert prompt_clean("caf\u00c3\u00a9") == "caf\u00e9"  # mojibake fixed, as ftfy does


def test_hub_names_pick_the_variant():
    from pipeline.models.families import family_for_hub_id

    names = {
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": "wan",
        "Wan-AI/Wan2.2-T2V-A14B-Diffusers": "wan2.2-a14b",
        "Wan-AI/Wan2.2-TI2V-5B-Diffusers": "wan2.2-ti2v",
        "Lightricks/LTX-Video": "ltx",
        "Lightricks/LTX-Video-0.9.7-dev": "ltx-condition",
        "THUDM/CogVideoX-5b": "cogvideox",
        "THUDM/CogVideoX1.5-5B": "cogvideox-1.5",
    }
    assert {n: family_for_hub_id(n).name for n in names} == names


def test_the_embedding_cache_encodes_each_text_alone():
    from pipeline.actor.renderer import EmbeddingCache

    calls = []
    cache = EmbeddingCache(capacity=8)
    encode_one = lambda text: calls.append(text) or {"prompt_embeds": text.upper()}  # noqa: E731
    assert cache.lookup(["a", "b", "a"], encode_one) == [{"prompt_embeds": t} for t in "ABA"]
    assert cache.lookup(["b", "c"], encode_one)[1] == {"prompt_embeds": "C"}
    assert calls == ["a", "b", "c"]  # one text per call, each once
