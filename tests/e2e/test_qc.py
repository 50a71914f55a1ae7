"""QC scores and flags (pipeline/outputs/qc.py) on synthetic clips and real tiny-model
output, and --qc flag / fail / off through a real render on the local Ray."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pytest

from pipeline.actor.renderer import Renderer
from pipeline.config import RenderSettings
from pipeline.outputs import qc
from pipeline.plan.batches import Batch
from pipeline.rundir.layout import thumb_relpath
from tests.conftest import prompt_rows, read_catalog, write_manifest
from tests.support.items import make_item as _item
from tests.support.runs import assert_exactly_once, by_id, run_in_process

SHAPE = (9, 64, 64, 3)


def _noise(seed=0, shape=SHAPE):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def synthetic() -> dict[str, np.ndarray]:
    frozen = np.repeat(_noise()[:1], SHAPE[0], axis=0)
    brightness = np.where(np.arange(SHAPE[0]) % 2 == 0, -40, 40).reshape(-1, 1, 1, 1)
    flicker = np.clip(_noise().astype(np.int16) // 2 + 64 + brightness, 0, 255).astype(np.uint8)
    return {
        "black": np.zeros(SHAPE, np.uint8),
        "white": np.full(SHAPE, 255, np.uint8),
        "flat": np.full(SHAPE, 128, np.uint8) + (np.arange(9) * 3).reshape(-1, 1, 1, 1),
        "frozen": frozen,
        "flicker": flicker,
    }


@pytest.mark.parametrize(
    "name, expected",
    [
        ("black", ["black", "flat", "frozen"]),
        ("white", ["white", "flat", "frozen"]),
        ("flat", ["flat"]),  # one colour per frame, but it changes: not frozen
        ("frozen", ["frozen"]),
        ("flicker", ["flicker"]),
    ],
)
def test_synthetic_bad_clips_are_flagged(name, expected):
    assert qc.check(synthetic()[name], "flag")["qc_flags"] == expected


def test_tiny_and_null_model_clips_are_not_flagged():
    tiny = Renderer("tiny", RenderSettings())
    clips = tiny.render(Batch(tuple(_item("a cat in the rain", s) for s in range(4)), 4))
    null = Renderer("null", RenderSettings(model="null"))
    clips += null.render(Batch(tuple(_item("p", s, model="null") for s in range(2)), 4))
    for frames in clips:
        checks = qc.check(frames, "flag")
        assert checks["qc_flags"] == [], checks
        assert 0 < checks["qc_luma_std"] and checks["qc_motion"] > 10 * qc.THRESHOLDS.frozen_motion


def test_scores_are_in_luma_levels_and_off_records_nothing():
    black = qc.scores(synthetic()["black"])
    assert black["qc_luma_mean"] == 0 and black["qc_black_frames"] == SHAPE[0]
    assert qc.scores(synthetic()["white"])["qc_luma_mean"] == pytest.approx(255, abs=0.01)
    assert qc.scores(synthetic()["flicker"])["qc_flicker"] == pytest.approx(80, abs=1)
    one_frame = qc.scores(_noise()[:1])
    assert one_frame["qc_motion"] is None and one_frame["qc_flicker"] is None
    assert qc.check(_noise(), "off") == {}
    reason = qc.failure_reason(qc.check(synthetic()["frozen"], "flag"))
    assert reason.startswith("QCFailed: frozen (motion 0.00 < 0.5)")


def test_large_frames_are_subsampled_not_copied_whole():
    frames = _noise(shape=(3, 1080, 1920, 3))
    assert qc.luma(frames).shape == (3, 135, 240)  # stride 8: long side <= QC_LONG_SIDE


# The null model: the QC path of a real render is under test (clips of the tiny model pass
# QC: test_tiny_and_null_model_clips_are_not_flagged).
FLAGS = ("--model", "null", "--actors", "1", "--batch-size", "4", "--flush-interval", "0.2")
FLAGS += ("--no-progress",)


def test_qc_flag_records_and_qc_fail_fails_with_reason(ray_local, tmp_path):
    rows = prompt_rows(5, prefix="qc", height=64, width=64)
    manifest = write_manifest(tmp_path / "prompts.parquet", rows)
    black = f"--inject-fault=black:{rows[2]['prompt']}"

    flagged = tmp_path / "flag"
    assert run_in_process(manifest, flagged, *FLAGS, black) == 0
    catalog = read_catalog(flagged)
    status = by_id(catalog, "status", "qc_flags", "qc_black_frames")
    assert status["qc-2"] == ("ok", ["black", "flat", "frozen"], 9)
    assert all(status[f"qc-{i}"][:2] == ("ok", []) for i in (0, 1, 3, 4))
    assert_exactly_once(flagged, [r["id"] for r in rows])  # thumbnails included
    report = (flagged / "report.html").read_text()
    assert "1 rows flagged (black: 1, flat: 1, frozen: 1;" in report
    assert json.loads((flagged / "summary.json").read_text())["qc"] == "flag"

    failing = tmp_path / "fail"
    assert run_in_process(manifest, failing, *FLAGS, black, "--qc", "fail") == 3
    catalog = read_catalog(failing)
    status = by_id(catalog, "status", "error", "uri", "qc_flags")
    assert status["qc-2"][0] == "failed" and status["qc-2"][2] is None
    assert status["qc-2"][1].startswith("QCFailed: black (9 black frames), flat")
    assert status["qc-2"][3] == ["black", "flat", "frozen"]
    key = by_id(catalog, "key")["qc-2"][0]
    assert not (failing / thumb_relpath(key)).exists()  # nothing written for it
    assert_exactly_once(failing, [r["id"] for r in rows])
    assert "QCFailed" in (failing / "report.html").read_text()

    skipped = tmp_path / "off"
    assert run_in_process(manifest, skipped, *FLAGS, black, "--qc", "off") == 0
    catalog = read_catalog(skipped)
    assert catalog["qc_flags"].null_count == catalog.num_rows
    assert pc.all(pc.is_null(catalog["qc_motion"])).as_py()
    # --qc is not part of the job: same pixels whatever the mode.
    assert by_id(catalog, "frames_sha256") == by_id(read_catalog(flagged), "frames_sha256")
