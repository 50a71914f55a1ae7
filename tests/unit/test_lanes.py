"""Speed lanes (issue 18, part 2): parsing, validation before Ray, keys and fingerprint, the
families' registry against real checkpoints, and what each lane does to the tiny model's
pixels in a fresh process, as a render actor applies it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pytest

from pipeline.cli import main
from pipeline.config import EncodeSettings, RenderSettings
from pipeline.errors import ConfigError
from pipeline.models import resolve_model
from pipeline.models.families import FAMILIES
from pipeline.models.lanes import (
    ATTENTION,
    CACHE_KINDS,
    MASKLESS_BACKENDS,
    check_lanes,
    key_text,
    parse_cache,
)
from pipeline.models.tiny import ensure_tiny_model
from pipeline.plan.manifest import validate
from pipeline.plan.planner import make_plan
from pipeline.rundir.jobjson import fingerprint_differences, job_fingerprint
from tests.conftest import REPO, write_manifest


def test_cache_spellings_and_their_errors():
    assert parse_cache("first-block").text == "first-block:0.05"  # the default value
    assert parse_cache(" First-Block:0.1 ").text == "first-block:0.1"
    assert parse_cache("taylorseer:3").text == "taylorseer:3"
    assert parse_cache("pab").text == "pab:2"
    for bad, words in (
        ("teacache", "unknown step cache; choose one of first-block[:THRESHOLD]"),
        ("taylorseer:2.5", "interval must be a whole number"),
        ("first-block:-1", "threshold must be above 0"),
        ("first-block:nan", "threshold must be above 0"),
    ):
        with pytest.raises(ConfigError, match=words.replace("[", r"\[")):
            parse_cache(bad)


def test_exact_lane_keeps_fingerprints_and_keys_and_each_lane_is_recorded():
    exact = job_fingerprint(RenderSettings(), EncodeSettings())
    assert "cache" not in exact["render"] and "attention_backend" not in exact["render"]
    cached = job_fingerprint(RenderSettings(cache="taylorseer:3"), EncodeSettings())
    assert fingerprint_differences(exact, cached) == [
        "render.cache: run dir has None, this command has 'taylorseer:3'"
    ]
    backend = job_fingerprint(RenderSettings(attention_backend="_native_math"), EncodeSettings())
    assert fingerprint_differences(exact, backend)[0].startswith("render.attention_backend")

    manifest = validate(pa.table({"prompt": ["a", "b"], "seed": [1, 2]}))

    def keys(**lanes):
        return make_plan(manifest, 1, lane=key_text(RenderSettings(**lanes))).rows["key"]

    plain = make_plan(manifest, 1).rows["key"].to_pylist()
    assert keys(attention_backend="_native_math").to_pylist() == plain  # kernels: same key
    lanes = (dict(cache="taylorseer:3"), dict(cache="pab:2"), dict(quantize="int8wo"))
    lanes += (dict(cache="pab:2", quantize="int8wo"),)
    every = [*plain, *(key for lane in lanes for key in keys(**lane).to_pylist())]
    assert len(set(every)) == len(every)  # approximate lanes never share an exact key
    assert keys(cache="taylorseer:3") == keys(cache="TaylorSeer:3")  # one spelling, one key


def _family(name: str):
    return resolve_model(name).family


def test_validation_refuses_what_cannot_run_before_anything_starts():
    tiny = [_family("tiny")]
    check_lanes(RenderSettings(attention_backend="_native_flash", cache="pab:2"), tiny)
    refusals = (
        (RenderSettings(attention_backend="flashy"), "not a diffusers attention backend"),
        (RenderSettings(attention_backend="flash"), "'flash' needs a CUDA device"),
        (RenderSettings(cache="first-block", batch_size=4), "needs --batch-size 1, got 4"),
    )
    for settings, words in refusals:
        with pytest.raises(ConfigError, match=words):
            check_lanes(settings, tiny)
    with pytest.raises(ConfigError, match="--cache taylorseer:5: family null takes no speed"):
        check_lanes(RenderSettings(cache="taylorseer"), [_family("null")])


def test_quantize_needs_torchao_and_a_known_type(monkeypatch):
    """Without torchao importable: exit 2 naming the install; with it: accepted."""
    import importlib.util

    tiny = [_family("tiny")]
    with pytest.raises(ConfigError, match="choose one of int8wo, int8dq, float8wo"):
        check_lanes(RenderSettings(quantize="int3"), tiny)
    real = importlib.util.find_spec  # torchao hidden, wherever it is installed
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name)
    )
    with pytest.raises(ConfigError, match=r"pip install 'promptreel\[quantize\]'"):
        check_lanes(RenderSettings(quantize="int8wo"), tiny)
    monkeypatch.undo()
    side = str(REPO / ".venv" / "side")  # torchao's folder in the test setup (Makefile)
    monkeypatch.syspath_prepend(side)
    importlib.invalidate_caches()
    check_lanes(RenderSettings(quantize="int8wo"), tiny)


def test_cli_refuses_a_lane_with_exit_2_naming_it(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.parquet", [{"prompt": "a", "seed": 1}])
    cases = (
        (("--cache", "first-block:0.1", "--batch-size", "2"), "needs --batch-size 1, got 2"),
        (("--cache", "pab", "--model", "null"), "--cache pab:2: family null takes"),
        (("--attention-backend", "sage"), "'sage' needs a CUDA device"),
    )
    for flags, words in cases:
        assert main(["plan", str(manifest), *flags]) == 2
        assert words in capsys.readouterr().err
    # A cache that decides per batch, without --batch-size: each request alone.
    assert main(["plan", str(manifest), "--cache", "first-block"]) == 0
    assert "batches of 1:" in capsys.readouterr().out


def _denoiser_facts(model: str) -> tuple[bool, bool, bool]:
    """(any attention processor takes a backend, the denoiser takes step caches, it is a
    transformer: what --quantize quantizes)."""
    from diffusers import DiffusionPipeline
    from diffusers.models.cache_utils import CacheMixin

    pipe = DiffusionPipeline.from_pretrained(model)
    transformer = getattr(pipe, "transformer", None)
    denoiser = transformer or pipe.unet
    processors = [getattr(m, "processor", None) for m in denoiser.modules()]
    takes_backend = any(hasattr(p, "_attention_backend") for p in processors if p is not None)
    return takes_backend, isinstance(denoiser, CacheMixin), transformer is not None


@pytest.mark.parametrize(
    "name", ["tiny", "wan2.2-a14b", "ltx", "cogvideox", "hunyuan", "mochi", "animatediff"]
)
def test_registry_says_what_the_checkpoint_takes(name):
    from bench.gpu.tiny_families import checkpoint

    model = checkpoint(name)
    family = resolve_model(model).family
    takes_backend, takes_caches, transformer = _denoiser_facts(model)
    assert (ATTENTION in family.lanes) == takes_backend, family.name
    assert ("quantize" in family.lanes) == transformer, family.name
    cache_lanes = set(family.lanes) & set(CACHE_KINDS)
    assert cache_lanes <= ({*CACHE_KINDS} if takes_caches else set()), family.name


LANE_SCRIPT = """
import json, sys
from pipeline.actor.renderer import Renderer
from pipeline.config import RenderSettings
from pipeline.plan.batches import Batch, Item
from pipeline.plan.manifest import validate
from pipeline.plan.planner import make_plan
from pipeline.schema import ITEM_FIELDS
import pyarrow as pa

model, lanes = sys.argv[1], json.loads(sys.argv[2])
rows = pa.table({"prompt": ["a fox"], "seed": [5], "num_inference_steps": [8]})
item = Item.from_record(make_plan(validate(rows), 1).items.select(ITEM_FIELDS).to_pylist()[0])
out = {}
for name, lane in lanes:  # each on a freshly loaded pipeline, as a new actor would load it
    renderer = Renderer(model, RenderSettings(model=model, batch_size=1, **lane))
    first, again = (renderer.render(Batch((item,), 1))[0] for _ in range(2))
    out[name] = [first.astype(int).tolist(), bool((first == again).all())]
print(json.dumps(out))
"""


def test_lanes_as_an_actor_applies_them():
    """In one fresh process, exact first and the attention backend last: diffusers also
    sets a backend process-wide, as it does in an actor (which runs one lane all its life).
    The math kernel stays within a few levels of exact; a step cache moves pixels; every
    lane gives the same request the same pixels twice."""
    import numpy as np

    lanes = [
        ("exact", {}),
        ("pab", {"cache": "pab:2"}),
        ("int8", {"quantize": "int8wo"}),
        ("math", {"attention_backend": "_native_math"}),
    ]
    side = REPO / ".venv" / "side"  # torchao, installed there by `make test` (Makefile)
    assert (side / "torchao").is_dir(), f"no torchao in {side}: run `make test` once"
    done = subprocess.run(
        [sys.executable, "-c", LANE_SCRIPT, str(ensure_tiny_model()), json.dumps(lanes)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(side), str(REPO)])},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert all(repeatable for _, repeatable in result.values()), result.keys()
    frames = {name: np.array(pixels) for name, (pixels, _) in result.items()}
    math_moved = int(np.abs(frames["math"] - frames["exact"]).max())
    cache_moved = int(np.abs(frames["pab"] - frames["exact"]).max())
    int8_moved = int(np.abs(frames["int8"] - frames["exact"]).max())
    print(f"max uint8 move vs exact: math {math_moved}, pab:2 {cache_moved}, int8 {int8_moved}")
    assert math_moved <= 2  # kernel order only
    assert cache_moved > 2 and int8_moved > 2  # reused attention, int8 weights: other pixels


def test_maskless_backends_are_those_this_diffusers_refuses_a_mask_in():
    import inspect

    from diffusers.models import attention_dispatch

    registry = attention_dispatch._AttentionBackendRegistry._backends
    refusing = {
        backend.value
        for backend, function in registry.items()
        if "attn_mask` is not supported" in inspect.getsource(function)
    }
    assert refusing == set(MASKLESS_BACKENDS)
    ltx = FAMILIES["ltx"]
    with pytest.raises(ConfigError, match="family ltx passes an attention mask"):
        check_lanes(RenderSettings(attention_backend="_native_flash"), [ltx])
    check_lanes(RenderSettings(attention_backend="_native_math"), [ltx])
