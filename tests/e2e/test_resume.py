"""Crash anywhere, resume, nothing lost or doubled (issue 4, points 1-3 and 7).

A render of 38 items (the null model: the checkpoint machinery is under test here, its
frames still a pure function of the request; pixels across batch-mates and resumes with a
real diffusion model are tests/e2e/test_pixel_contract.py's) runs as a real subprocess and
is SIGKILLed at several points, found by polling the run dir (never by sleeping): mid-run
with the driver's own local Ray (a second driver is refused meanwhile), mid-resume joined
to a shared Ray (taking over the dead driver's lock), and in the final phase (ledger
complete, catalog not yet written). No kill races the run's end: the last planned batch
hangs (test-only `hang` fault) in the first two, and the third driver blocks before its
sweep (`pause:sweep`) until killed. The last resume must give a catalog identical, item by
item, to an uninterrupted run, whatever the actor counts (1, 3 and 1 here against a
baseline of 2).

The helpers here are shared with test_faults.py and test_node_loss.py.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.config import RenderSettings, RunConfig
from pipeline.driver.job import load_and_plan
from pipeline.rundir.layout import RunDir
from pipeline.rundir.ledger import Ledger
from pipeline.rundir.status import run_status
from pipeline.rundir.storage import TMP_PREFIX
from tests.conftest import prompt_rows, read_catalog, write_manifest
from tests.support.runs import (
    assert_exactly_once,
    by_id,
    clip_files,
    kill_session,
    ledger_keys,
    poll,
    render_actor_pids,
    run_in_process,
    start_render,
    wait_render_actors_gone,
)

ITEMS = 38  # ~40: nine full batches of 4 and one short, padded batch
FLUSH = "0.2"
DECOYS = 100  # temp files a killed write would leave: the resume must sweep them
RENDER_FLAGS = ("--model", "null", "--batch-size", "4", "--flush-interval", FLUSH, "--no-progress")
PLANNED = RenderSettings(model="null", batch_size=4)

# --- the test ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "prompts.parquet"
    return write_manifest(path, prompt_rows(ITEMS, prefix="resume", height=64, width=64))


@pytest.fixture(scope="module")
def hang_last_batch(manifest) -> str:
    """A fault that makes the last planned batch (dispatched last) hang: a run that has it
    can never finish before the test kills it."""
    _, plan = load_and_plan(RunConfig(manifest=str(manifest), out="", render=PLANNED))
    return f"--inject-fault=hang:{list(plan.batches())[-1].items[0].prompt}"


@pytest.fixture(scope="module")
def baseline(ray_local, manifest, tmp_path_factory):
    """An uninterrupted run of the same manifest (2 actors): (run dir, catalog)."""
    out = tmp_path_factory.mktemp("baseline") / "run"
    assert run_in_process(manifest, out, "--actors", "2", *RENDER_FLAGS) == 0
    return out, read_catalog(out)


def test_sigkill_at_several_points_then_resume_matches_uninterrupted_run(
    ray_local, manifest, baseline, hang_last_batch, tmp_path, capsys
):
    out = tmp_path / "run"
    address = ray_local.get_runtime_context().gcs_address
    report = {}
    snapshot = {}
    started = time.monotonic()

    def mark(name):
        report.setdefault("timeline_s", {})[name] = round(time.monotonic() - started, 1)

    def take_snapshot():
        snapshot.update(keys=ledger_keys(out), clips=clip_files(out))

    # Kill 1: mid-run, the embedded default (the driver starts its own local Ray), 1 actor.
    # While it lives, `status` reads its progress and a second driver is refused.
    log = tmp_path / "kill1.log"
    proc = start_render(manifest, out, "--actors", "1", hang_last_batch, *RENDER_FLAGS, log=log)
    poll(lambda: len(ledger_keys(out)) >= 8, proc, log)
    mark("kill1_8_recorded")
    live = run_status(RunDir(str(out)))
    assert live["driver"].startswith("running") and live["items"] == ITEMS
    assert live["counts"]["ok"] >= 8 and sum(live["counts"].values()) == ITEMS
    capsys.readouterr()
    assert run_in_process(manifest, out, *RENDER_FLAGS) == 2
    err = capsys.readouterr().err
    assert "another driver is running" in err and f"pid {proc.pid}" in err, err
    leftovers = kill_session(proc, take_snapshot)
    recorded1, clips1 = snapshot["keys"], snapshot["clips"]
    report["kill1"] = {**_kill_report(recorded1, clips1), "ray_leftovers": leftovers}
    # At most the batches in flight (2 per actor) plus one flush interval's results.
    assert report["kill1"]["lost"] <= 1 * 2 * 4 + _one_flush_of_results(out)
    assert (out / "_state" / "driver.lock").exists()  # stale: its owner is dead
    mark("kill1_killed")
    dead = run_status(RunDir(str(out)))
    assert dead["driver"].startswith("dead") and dead["counts"]["ok"] == len(recorded1)

    # Kill 2: mid-resume (it takes the stale lock over), joined to a shared Ray, 3 actors.
    log = tmp_path / "kill2.log"
    older = set(render_actor_pids(os.getpid()))  # on the shared Ray before this driver
    proc = start_render(
        manifest,
        out,
        "--actors",
        "3",
        "--address",
        address,
        hang_last_batch,
        *RENDER_FLAGS,
        log=log,
    )
    poll(lambda: len(ledger_keys(out)) >= len(recorded1) + 4, proc, log)
    kill_session(proc, take_snapshot)
    mark("kill2_killed")
    recorded2, clips2 = snapshot["keys"], snapshot["clips"]
    wait_render_actors_gone(older)
    mark("kill2_killed_actors_gone")
    assert recorded1 <= recorded2
    _assert_not_rerendered(out, recorded1, clips1)
    report["kill2"] = _kill_report(recorded2, clips2)
    assert report["kill2"]["lost"] <= 3 * 2 * 4 + _one_flush_of_results(out)

    # Kill 3: the final phase. Every key is in the ledger, the catalog not yet written: the
    # driver blocks before its sweep (test-only `pause:sweep`) and is killed there. The temp
    # files planted in clips/ (as killed writes leave them) are then the resume's to sweep.
    decoys = out / "clips" / "00"
    decoys.mkdir(parents=True, exist_ok=True)
    for number in range(DECOYS):
        (decoys / f"{TMP_PREFIX}decoy-{number:05d}").touch()
    mark("decoys_planted")
    log = tmp_path / "kill3.log"
    proc = start_render(
        manifest,
        out,
        "--actors",
        "1",
        "--address",
        address,
        "--inject-fault=pause:sweep",
        *RENDER_FLAGS,
        log=log,
    )
    poll(lambda: b"paused before sweep" in log.read_bytes(), proc, log)
    kill_session(proc)
    wait_render_actors_gone(older)
    mark("kill3_killed")
    assert not (out / "catalog.parquet").exists(), "killed too late: catalog already written"
    recorded3 = ledger_keys(out)
    assert recorded3 == set(baseline[1]["key"].to_pylist())  # the ledger was complete
    _assert_not_rerendered(out, recorded2, clips2)
    report["kill3"] = {"recorded": len(recorded3), "decoys_left": len(os.listdir(decoys))}
    assert report["kill3"]["decoys_left"] == DECOYS  # killed before the sweep

    # The last resume has nothing to render: it only writes the catalog (no Ray needed).
    assert run_in_process(manifest, out, "--actors", "2", *RENDER_FLAGS) == 0
    mark("final_resume_done")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rendered_this_run"] == 0
    assert not (out / "_state" / "driver.lock").exists()

    assert_exactly_once(out, baseline[1]["id"].to_pylist())
    # Point 3: same pixels (and bytes) as the uninterrupted run, whatever the actor count.
    catalog = read_catalog(out)
    assert set(catalog["status"].to_pylist()) == {"ok"}
    columns = ("key", "frames_sha256", "sha256")
    assert by_id(catalog, *columns) == by_id(baseline[1], *columns)
    # Point 7: verify re-checks every clip and re-renders a sample.
    assert main(["verify", str(out), "--sample", "1"]) == 0
    mark("verify_done")
    stray = out / "clips" / "ab" / f"{TMP_PREFIX}left-by-a-crash"
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"partial")
    clip = Path(catalog["uri"][0].as_py().removeprefix("file://"))
    clip.write_bytes(clip.read_bytes() + b"x")
    capsys.readouterr()
    assert main(["verify", str(out), "--sample", "0"]) == 3
    found = capsys.readouterr().out
    assert "temp file left by a crash" in found and "sha256" in found, found
    report["kill1"]["rendered_again"] = _rerendered(out, recorded1, clips1)
    report["kill2"]["rendered_again"] = _rerendered(out, recorded2, clips2)
    print("kill points:", json.dumps(report))


def test_drifted_resume_refused_and_incremental_manifest_renders_only_new_rows(
    ray_local, baseline, tmp_path, capsys
):
    # Extends the baseline run dir itself (its catalog was read before), since a run dir
    # cannot be copied: the ledger records each clip by absolute URI.
    out, catalog_before = baseline
    before = clip_files(out)
    rows = prompt_rows(ITEMS + 3, prefix="resume", height=64, width=64)
    manifest = write_manifest(tmp_path / "more.parquet", rows)
    capsys.readouterr()
    for flags, named in (
        (("--batch-size", "2"), "render.batch_size: run dir has 4, this command has 2"),
        (("--format", "webm"), "encode.format: run dir has 'mp4', this command has 'webm'"),
        (("--model", "tiny"), "model: run dir has 'null-v1'"),
    ):
        flags = ("--model", "null", *flags) if "--model" not in flags else flags
        assert run_in_process(manifest, out, "--no-progress", *flags) == 2
        err = capsys.readouterr().err
        assert "holds a different job" in err and named in err, err
    assert clip_files(out) == before and not (out / "_state" / "driver.lock").exists()

    assert run_in_process(manifest, out, "--actors", "1", *RENDER_FLAGS) == 0
    assert json.loads((out / "summary.json").read_text())["rendered_this_run"] == 3
    assert clip_files(out).items() >= before.items()  # old clips untouched
    assert_exactly_once(out, [row["id"] for row in rows])
    old = by_id(catalog_before, "key", "frames_sha256", "sha256")
    now = by_id(read_catalog(out), "key", "frames_sha256", "sha256")
    assert {i: v for i, v in now.items() if i in old} == old


def _one_flush_of_results(out: Path) -> int:
    """How many results one flush interval can leave unwritten, measured on this run: the
    most recorded rows that finished within any FLUSH seconds, plus a batch (its rows
    return together). A fixed number would assume a speed: faster encoding once broke it."""
    stamps = Ledger(RunDir(str(out))).read()["finished_at"].to_pylist()
    times = np.sort([datetime.fromisoformat(stamp).timestamp() for stamp in stamps])
    within = np.searchsorted(times, times + float(FLUSH), side="right") - np.arange(len(times))
    return int(within.max(initial=0)) + 4


def _kill_report(recorded: set[str], clips: dict[str, int]) -> dict:
    on_disk = {Path(name).name.split(".", 1)[0] for name in clips}
    lost = on_disk - recorded  # rendered, not yet checkpointed: will render again
    return {"recorded": len(recorded), "clips": len(on_disk), "lost": len(lost)}


def _assert_not_rerendered(out: Path, recorded: set[str], clips_then: dict[str, int]) -> None:
    """Keys the ledger held at a kill were skipped by every later run: same clip file."""
    now = clip_files(out)
    for name, inode in clips_then.items():
        if Path(name).name.split(".", 1)[0] in recorded:
            assert now.get(name) == inode, f"{name} was rendered again"


def _rerendered(out: Path, recorded: set[str], clips_then: dict[str, int]) -> int:
    now = clip_files(out)
    return sum(
        1
        for name, inode in clips_then.items()
        if Path(name).name.split(".", 1)[0] not in recorded and now.get(name) != inode
    )
