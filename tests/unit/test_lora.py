"""LoRA per row (issue 18): the `lora` cell and --lora, validation before any GPU time,
keys, and pixels equal to plain diffusers' load_lora_weights + set_adapters + call.
In-process, no Ray: the tiny Wan model and tiny adapters built here."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from pipeline.actor.renderer import Renderer, to_uint8
from pipeline.config import RenderSettings
from pipeline.errors import ManifestError
from pipeline.media.source import sha256_hex
from pipeline.models import model_location, resolve_model
from pipeline.plan.batches import Batch, Item
from pipeline.plan.keys import compute_keys
from pipeline.plan.lora_rows import MAX_ADAPTERS, AdapterSpec, parse_lora
from pipeline.plan.manifest import validate
from pipeline.plan.media_rows import MediaOptions
from tests.support.lora_files import write_text_encoder_lora, write_wan_lora

SHAPE = {"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 2}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    paths = {
        "a": write_wan_lora(root / "a.safetensors", seed=1),
        "b": write_wan_lora(root / "b.safetensors", seed=2),
        "original": write_wan_lora(root / "orig.safetensors", seed=1, original=True),
        "text": write_text_encoder_lora(root / "text.safetensors"),
    }
    (root / "notes.safetensors").write_text("not a tensor file")
    paths["not_safetensors"] = root / "notes.safetensors"
    shutil.copy(paths["a"], root / "a-copy.safetensors")
    paths["a_copy"] = root / "a-copy.safetensors"
    return paths


def test_cells_parse_as_a_location_a_list_or_json_text():
    assert parse_lora(None) is None and parse_lora("  ") is None
    assert parse_lora(" style.safetensors ") == (AdapterSpec("style.safetensors", 1.0),)
    listed = [{"uri": "a.safetensors", "scale": 0.5}, {"uri": "s3://b/c.safetensors"}]
    expected = (AdapterSpec("a.safetensors", 0.5), AdapterSpec("s3://b/c.safetensors", 1.0))
    assert parse_lora(listed) == expected
    assert parse_lora(json.dumps(listed)) == expected
    assert parse_lora("[]") == ()  # no adapter, even with --lora
    assert parse_lora({"uri": "a.safetensors", "scale": 0.5}) == (expected[0],)  # one struct
    for bad, says in [
        ("[{", "does not parse"),
        ([{"uri": "a", "scale": "high"}], "finite number"),
        ([{"uri": "a", "scale": float("nan")}], "finite number"),
        ([{"uri": "a", "weight": 1}], "a path or URL"),
        ([{"scale": 1}], "a path or URL"),
        (["a", "a"], "listed twice"),
        ([f"{i}.safetensors" for i in range(MAX_ADAPTERS + 1)], f"at most {MAX_ADAPTERS}"),
        (7, "a path or URL"),
    ]:
        with pytest.raises(ValueError, match=says):
            parse_lora(bad)


def _validate(files, rows, lora=None, **kwargs):
    rows = [{"prompt": "a fox", "seed": 1, **SHAPE, "model": None, "lora": None, **r} for r in rows]
    table = pa.Table.from_pylist(rows)
    options = MediaOptions(base=str(files["a"].parent), lora=lora)
    return validate(table, media=options, **kwargs).table


def test_validated_cells_carry_content_hashes_and_keys_ignore_the_location(files):
    rows = [
        {"lora": "a.safetensors"},
        {"lora": str(files["a_copy"])},  # same bytes elsewhere: same request
        {"lora": json.dumps([{"uri": "a.safetensors", "scale": 0.5}])},
        {"lora": None},  # --lora applies
        {"lora": "[]"},  # explicitly none
        {"lora": json.dumps(["a.safetensors", "b.safetensors"])},
    ]
    table = _validate(files, rows, lora="b.safetensors")
    cells = [json.loads(c) if c else None for c in table["lora"].to_pylist()]
    assert cells[0] == [{"uri": str(files["a"]), "scale": 1.0, "sha256": cells[0][0]["sha256"]}]
    assert cells[1][0]["sha256"] == cells[0][0]["sha256"]
    assert cells[3][0]["uri"] == str(files["b"]) and cells[4] is None
    assert [a["uri"] for a in cells[5]] == [str(files["a"]), str(files["b"])]
    keys = compute_keys(table).to_pylist()
    assert keys[0] == keys[1]  # content, not URL
    assert len({keys[0], keys[2], keys[3], keys[4], keys[5]}) == 5  # scale, file, none, set
    structs = _validate(files, [{"lora": [{"uri": "a.safetensors", "scale": 0.5}]}])
    assert structs.schema.field("lora").type == pa.string()  # a list of structs, validated
    assert compute_keys(structs).to_pylist()[0] == keys[2]  # = the same list as JSON text
    plain = compute_keys(_validate(files, [{}])).to_pylist()[0]
    assert keys[4] == plain  # no adapter: the key of a row without the column (unchanged)


def test_unusable_adapters_are_refused_by_row_before_any_render(files):
    from tests.support.checkpoints import checkpoint_dir
    from tests.support.video_checkpoints import video_checkpoint_dir

    ltx, unet = str(checkpoint_dir("ltx")), str(video_checkpoint_dir("animatediff"))
    rows = [
        {"lora": "missing.safetensors"},
        {"lora": "notes.safetensors"},
        {"lora": "a.safetensors", "model": ltx},  # a Wan LoRA on an LTX row
        {"lora": "text.safetensors"},
        {"lora": "a.safetensors", "model": "null"},
        {"lora": json.dumps(["a.safetensors", "a-copy.safetensors"])},
        {"lora": "a.safetensors", "model": unet, "height": 32, "width": 32},
        {"lora": "a.safetensors"},  # fine
    ]
    with pytest.raises(ManifestError) as refused:
        _validate(files, rows)
    problems = {p.row: p for p in refused.value.problems if p.field == "lora"}
    assert sorted(problems) == [0, 1, 2, 3, 4, 5, 6]  # each by row; the last row is fine
    assert 7 not in {p.row for p in refused.value.problems}
    assert "missing.safetensors" in problems[0].message
    assert "not a safetensors file" in problems[1].message
    assert str(files["a"]) in problems[2].message and "ltx" in problems[2].message
    assert "another model family" in problems[2].message
    assert "it adapts text_encoder: only the transformer is supported" in problems[3].message
    assert "null model takes no LoRA" in problems[4].message
    assert "same file content" in problems[5].message
    assert "LoRA for UNet models is not supported yet" in problems[6].message


def test_hub_adapters_are_pinned_or_refused_naming_the_repo(files, tmp_path):
    """`org/name[@rev][:file]` where no such local file exists: pinned to the commit its
    revision resolves to in the (offline) Hugging Face cache; `dir/x.safetensors` stays a
    path. Repos in the session's test cache (tests/support/hub_cache.py)."""
    from tests.support.hub_cache import add_snapshot, point_ref, session_hub

    two = tmp_path / "two"
    two.mkdir()
    shutil.copy(files["a"], two / "style.safetensors")
    shutil.copy(files["b"], two / "motion.safetensors")
    sha = "d1" * 20
    add_snapshot(session_hub(), "acme/two-loras", sha, two)
    point_ref(session_hub(), "acme/two-loras", sha, ref="v1")  # a tag: no refs/main
    rows = [
        {"lora": "acme/two-loras@v1:motion.safetensors"},
        {"lora": "acme/two-loras@v1"},
        {"lora": "acme/nowhere"},
        {"lora": "loras/style.safetensors"},
    ]
    with pytest.raises(ManifestError) as refused:
        _validate(files, rows)
    problems = {p.row: p.message for p in refused.value.problems}
    assert sorted(problems) == [1, 2, 3]
    assert "which .safetensors file?" in problems[1]
    assert "motion.safetensors, style.safetensors" in problems[1]
    assert "'acme/two-loras@v1:<file>'" in problems[1]
    assert "LoRA 'acme/nowhere': it is not in the local Hugging Face cache" in problems[2]
    assert "hf download acme/nowhere" in problems[2] and "or pass a local path" in problems[2]
    assert "loras/style.safetensors" in problems[3] and "Hugging Face" not in problems[3]
    table = _validate(files, rows[:1])
    (adapter,) = json.loads(table["lora"][0].as_py())
    assert adapter["uri"] == f"acme/two-loras@{sha}:motion.safetensors"
    assert adapter["sha256"] == sha256_hex(files["b"].read_bytes())


def _item(seed: int, lora: tuple = (), prompt: str = "a fox in snow") -> Item:
    return Item(
        f"k{seed}-{len(lora)}",
        prompt,
        "",
        seed,
        "tiny",
        fps=8.0,
        guidance_scale=5.0,
        lora=lora,
        **SHAPE,
    )


def _adapters(files, table_cell) -> tuple:
    """Validated adapters of one cell, as the plan hands them to the actor."""
    from pipeline.plan.batches import Adapter

    cell = _validate(files, [{"lora": table_cell}])["lora"][0].as_py()
    return tuple(Adapter(**a) for a in json.loads(cell))


def test_pixels_equal_plain_diffusers_and_switching_never_reloads(files):
    import torch
    from diffusers import DiffusionPipeline

    sets = {
        "base": (),
        "a": _adapters(files, json.dumps([{"uri": "a.safetensors", "scale": 0.7}])),
        "ab": _adapters(
            files,
            json.dumps(
                [{"uri": "a.safetensors", "scale": 0.7}, {"uri": "b.safetensors", "scale": -0.5}]
            ),
        ),
        "original": _adapters(files, "orig.safetensors"),
    }
    renderer = Renderer("tiny", RenderSettings())
    base_pipe = renderer.pipe
    order = ["base", "a", "ab", "base", "original", "a"]
    got = {}
    for name in order:
        frames = renderer.render(Batch((_item(3, sets[name]), _item(4, sets[name])), 2))
        got.setdefault(name, []).append(frames)
    assert renderer.pipe is base_pipe and renderer.adapters.loads == 3  # a, b, original
    for runs in got.values():  # switching back gives the same pixels
        for frames in runs[1:]:
            assert all(np.array_equal(x, y) for x, y in zip(runs[0], frames))

    def plain(adapters: dict) -> list[np.ndarray]:
        pipe = DiffusionPipeline.from_pretrained(model_location(resolve_model("tiny")))
        pipe.set_progress_bar_config(disable=True)
        for name, path in adapters.items():
            pipe.load_lora_weights(str(path), adapter_name=name)
        if adapters:
            scales = {"a": 0.7, "b": -0.5, "original": 1.0}
            pipe.set_adapters(list(adapters), adapter_weights=[scales[n] for n in adapters])
        out = pipe(
            prompt=["a fox in snow"] * 2,
            negative_prompt=[""] * 2,
            generator=[torch.Generator("cpu").manual_seed(s) for s in (3, 4)],
            guidance_scale=5.0,
            output_type="np",
            **SHAPE,
        )
        return [to_uint8(clip) for clip in out.frames]

    expected = {
        "base": plain({}),
        "a": plain({"a": files["a"]}),
        "ab": plain({"a": files["a"], "b": files["b"]}),
        "original": plain({"original": files["original"]}),
    }
    for name, frames in expected.items():
        assert all(np.array_equal(x, y) for x, y in zip(got[name][0], frames)), name
    assert not np.array_equal(got["a"][0][0], got["base"][0][0])  # the adapter acts
    assert not np.array_equal(got["a"][0][0], got["ab"][0][0])


def test_second_expert_adapters_equal_plain_load_into_transformer_2(files):
    """Wan 2.2 A14B: an adapter with `"expert": "transformer_2"` loads into the low-noise
    expert, as `load_lora_weights(..., load_into_transformer_2=True)` does; the key and the
    catalog say so; other models refuse it."""
    import torch
    from diffusers import DiffusionPipeline

    from tests.support.checkpoints import checkpoint_dir

    a14b = str(checkpoint_dir("wan2.2-a14b"))
    both = [
        {"uri": "a.safetensors", "scale": 0.8},
        {"uri": "b.safetensors", "expert": "transformer_2"},
    ]
    table = _validate(files, [{"lora": json.dumps(both), "model": a14b}])
    entries = json.loads(table["lora"][0].as_py())
    assert ["expert" in e for e in entries] == [False, True]  # the default is not written
    assert entries[1]["expert"] == "transformer_2"
    first_only = _validate(
        files, [{"lora": json.dumps(both[:1] + [{"uri": "b.safetensors"}]), "model": a14b}]
    )
    assert compute_keys(table)[0] != compute_keys(first_only)[0]  # another request
    with pytest.raises(ManifestError, match="tiny models have no transformer_2"):
        _validate(files, [{"lora": json.dumps(both)}])  # tiny: one transformer
    with pytest.raises(ManifestError, match="expert is one of transformer, transformer_2"):
        _validate(files, [{"lora": json.dumps([{"uri": "a.safetensors", "expert": "both"}])}])

    from pipeline.plan.batches import Adapter

    item = Item(
        "k-a14b", "a fox in snow", "", 3, a14b, fps=8.0, guidance_scale=5.0,
        params=(("guidance_scale_2", 3.0),), lora=tuple(Adapter(**e) for e in entries), **SHAPE,
    )  # fmt: skip
    ours = Renderer(a14b, RenderSettings()).render(Batch((item,), 1))[0]

    pipe = DiffusionPipeline.from_pretrained(a14b)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(files["a"]), adapter_name="a")
    pipe.load_lora_weights(str(files["b"]), adapter_name="b", load_into_transformer_2=True)
    pipe.set_adapters(["a", "b"], adapter_weights=[0.8, 1.0])
    out = pipe(
        prompt=["a fox in snow"],
        negative_prompt=[""],
        generator=[torch.Generator("cpu").manual_seed(3)],
        guidance_scale=5.0,
        guidance_scale_2=3.0,
        output_type="np",
        **SHAPE,
    )
    assert np.array_equal(ours, to_uint8(out.frames[0]))


def test_an_adapter_changed_since_validation_fails_its_batch_not_retried(files):
    from pipeline.actor.adapters import Adapters
    from pipeline.config import MediaLimits
    from pipeline.errors import RenderError
    from pipeline.plan.batches import Adapter

    adapters = Adapters(pipe=None, limits=MediaLimits())  # refused before the pipe is touched
    with pytest.raises(RenderError, match="lora: .* changed since validation") as caught:
        adapters.apply((Adapter(str(files["a"]), 1.0, "0" * 64),))
    assert not caught.value.retriable and adapters.loads == 0
