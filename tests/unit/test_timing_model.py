"""bench.timing_model on the CPU in its reduced mode (the real Wan 2.1 1.3B width with 2 of
its 30 layers, the real Wan VAE, a 16x16x5 video), and the GPU check's script syntax."""

from __future__ import annotations

import json
import subprocess

import pytest

from bench import timing_model
from bench.timing_flops import SPECS, dit_flops, latent_shape
from tests.conftest import REPO


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("timing") / "timing.json"
    argv = ["--reduced", "--models", "wan-1.3b", "wan-vae", "--shape", "16x16x5"]
    argv += ["--warmup", "0", "--repeats", "1", "--steps", "50", "--json", str(out)]
    timing_model.main(argv)
    return json.loads(out.read_text())


def test_json_has_the_fields_and_says_reduced(result):
    assert result["reduced"] is True and result["device"] == "cpu"
    assert result["peak_tflops"] is None and "60 GPU-seconds" in result["goal"]
    step, decode = result["rows"]
    assert (step["model"], step["kind"], decode["model"], decode["kind"]) == (
        "wan-1.3b",
        "transformer",
        "wan-vae",
        "vae",
    )
    assert step["num_layers"] == 2 and step["num_layers_published"] == 30
    assert step["batch"] == 2 and decode["batch"] == 1  # CFG: cond + uncond
    assert step["latent"] == decode["latent"] == [16, 2, 2, 2]
    for row in (step, decode):
        assert row["reduced"] and row["finite"]
        assert row["seconds"] > 0 and row["tflops_per_s"] > 0 and row["peak_fraction"] is None
    assert decode["out_shape"] == [1, 3, 5, 16, 16]


def test_analytic_flops_agree_with_flop_counter_mode(result):
    step = result["rows"][0]
    assert step["flops_analytic"] > 0
    assert abs(step["flops_counted"] / step["flops_analytic"] - 1) < 0.05
    parts = step["flops_parts"]
    assert parts["total"] == parts["linear"] + parts["attention"] + parts["embed_and_head"]


def test_seconds_per_video_is_steps_times_step_plus_decode(result):
    (video,) = result["videos"]
    step, decode = result["rows"]
    assert video["steps"] == 50 and video["reduced"]
    assert video["video_s"] == pytest.approx(50 * step["seconds"] + decode["seconds"])
    assert video["flops"] == 50 * step["flops"] + decode["flops"]


def test_full_size_wan_1_3b_step_is_the_published_28_pflop_per_video():
    latent = latent_shape("wan", 832, 480, 81)
    assert latent == (16, 21, 60, 104)
    flops = dit_flops(SPECS["wan-1.3b"], SPECS["wan-1.3b"].config, latent, batch=2)
    assert flops["tokens"] == 21 * 30 * 52
    assert 50 * flops["total"] / 1e15 == pytest.approx(28.3, abs=0.05)


def test_gpu_check_script_parses():
    for script in ("run.sh", "fetch_wheels.sh"):
        subprocess.run(["bash", "-n", str(REPO / "bench" / "gpu" / script)], check=True)
