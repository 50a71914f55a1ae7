"""Same request, same pixels BY DESIGN: on a model whose pixels move with batch-mates and
position (tests/support/batchmates_model.py), a resume after a kill, retries after injected
faults, and 1 vs 2 actors all reproduce a clean run's frames_sha256 exactly, because each
item is always rendered in its planned batch (pipeline/plan/composition.py). A stopped run
covers every prompt before any second seed, urgent rows (`priority`) first.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.cli import main
from pipeline.config import RenderSettings, RunConfig
from pipeline.driver.job import load_and_plan
from tests.conftest import read_catalog, write_manifest
from tests.support.batchmates_model import ensure_batchmates_model
from tests.support.runs import (
    assert_exactly_once,
    by_id,
    kill_session,
    ledger_keys,
    poll,
    run_in_process,
    start_render,
)

PROMPTS, SEEDS = 6, 2  # 12 items in 6 planned batches of 2
SHAPE = {"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 4}
URGENT = "prompt 4"  # given priority 3 in the coverage run
EXACT = ("key", "frames_sha256", "sha256", "batch_id", "batch_pos")


@pytest.fixture(scope="module")
def model_dir():
    return str(ensure_batchmates_model())


def _flags(model_dir, *extra):
    return (
        "--model",
        model_dir,
        "--batch-size",
        "2",
        "--flush-interval",
        "0.2",
        "--no-progress",
        *extra,
    )


def _rows(priority=False):
    rows = []
    for p in range(PROMPTS):
        for s in range(SEEDS):  # manifest order: every seed of a prompt, then the next
            row = {"id": f"p{p}-s{s}", "prompt": f"prompt {p}", "seed": 1000 * p + s, **SHAPE}
            if priority:
                row["priority"] = 3 if row["prompt"] == URGENT else None
            rows.append(row)
    return rows


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract")
    return {
        "plain": write_manifest(tmp / "plain.parquet", _rows()),
        "priority": write_manifest(tmp / "priority.parquet", _rows(priority=True)),
    }


@pytest.fixture(scope="module")
def clean(ray_local, model_dir, manifests, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "run"  # 2 actors; every other run here has 1
    assert run_in_process(manifests["plain"], out, *_flags(model_dir, "--actors", "2")) == 0
    return out, read_catalog(out)


def test_model_pixels_move_with_batch_mates_and_position(model_dir):
    """The effect the design must not rest on luck for, measured with plain diffusers."""
    import torch
    from diffusers import DiffusionPipeline

    torch.set_num_threads(2)
    pipe = DiffusionPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)

    def frames(prompts, seeds):
        out = pipe(
            prompt=prompts,
            **SHAPE,
            guidance_scale=5.0,
            output_type="np",
            generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
        ).frames
        return [np.round(np.clip(clip, 0, 1) * 255).astype(np.uint8) for clip in out]

    twins = frames(["a cat", "a cat"], [7, 7])
    first, last = frames(["a cat", "a dog"], [7, 1])[0], frames(["a dog", "a cat"], [1, 7])[1]
    twins_moved = int((twins[0] != twins[1]).sum())
    position_moved = int((first != last).sum())
    most = int(np.abs(first.astype(int) - last.astype(int)).max())
    print(
        f"of {first.size} uint8 values: {twins_moved} differ between two identical samples "
        f"of one batch; {position_moved} move with position and mate (max {most})"
    )
    assert twins_moved > 0 and position_moved > 0


def test_verify_rerenders_the_planned_batch(clean):
    assert main(["verify", str(clean[0]), "--sample", "3"]) == 0


def _first_requests(plan) -> set[str]:
    """Keys of the first row of every prompt, in manifest order (from the rows alone)."""
    first: dict[str, str] = {}
    for prompt, key in zip(plan.rows["prompt"].to_pylist(), plan.rows["key"].to_pylist()):
        first.setdefault(prompt, key)
    return set(first.values())


def test_stopped_run_covers_every_prompt_first_then_resume_is_exact(
    clean, model_dir, manifests, tmp_path, ray_local
):
    """Also the actor-count contract: every item here is rendered by a 1-actor driver (the
    stopped one or the resume) and must equal the clean run's, which had 2 actors. (A
    separate uninterrupted 1-actor run proved nothing more and cost a model actor.)"""
    config = RunConfig(
        manifest=str(manifests["priority"]),
        out="",
        render=RenderSettings(model=model_dir, batch_size=2),
    )
    _, plan = load_and_plan(config)
    covering = _first_requests(plan)
    urgent = {
        k
        for k, p in zip(plan.rows["key"].to_pylist(), plan.rows["prompt"].to_pylist())
        if p == URGENT
    }
    batches = list(plan.batches())
    # Hang the first planned batch that holds neither an urgent request nor only first
    # requests: everything dispatched before it finishes, nothing after it can.
    stop = next(
        i for i, b in enumerate(batches) if not urgent & set(b.keys) and set(b.keys) - covering
    )
    before = {key for batch in batches[:stop] for key in batch.keys}
    assert covering | urgent <= before  # coverage first, the urgent prompt's seeds too

    out = tmp_path / "run"
    log = tmp_path / "stopped.log"
    hang = f"--inject-fault=hang:{batches[stop].items[0].key}"
    joined = ("--address", ray_local.get_runtime_context().gcs_address)  # no Ray start
    proc = start_render(
        manifests["priority"], out, *_flags(model_dir, "--actors", "1", hang, *joined), log=log
    )
    try:
        poll(lambda: ledger_keys(out) >= before, proc, log, timeout=240)
        done = ledger_keys(out)
    finally:
        kill_session(proc)
    # Stopped here: every prompt at least once, no second seed beyond the urgent prompt's.
    assert done == before, (done - before, before - done)

    # The resume (no fault) renders the rest: identical pixels to the clean run, which had
    # no priority column, other actors and no interruption.
    assert run_in_process(manifests["priority"], out, *_flags(model_dir, "--actors", "1")) == 0
    catalog = read_catalog(out)
    assert_exactly_once(out, [row["id"] for row in _rows()])
    assert by_id(catalog, *EXACT) == by_id(clean[1], *EXACT)
    assert not any(clean[1]["isolated"].to_pylist())
    assert catalog["priority"].to_pylist() == [3.0 * (r["prompt"] == URGENT) for r in _rows()]


def test_retries_render_in_the_planned_batch_and_only_lone_retries_are_isolated(
    clean, model_dir, manifests, tmp_path
):
    _, plan = load_and_plan(
        RunConfig(
            manifest=str(manifests["plain"]),
            out="",
            render=RenderSettings(model=model_dir, batch_size=2),
        )
    )
    batches = list(plan.batches())
    culprit_batch = batches[1]  # not the last: a batch behind it is in flight when it dies
    culprit, mate = culprit_batch.items
    storage_prompt = next(
        i.prompt
        for b in batches[3:]
        for i in b.items
        if i.prompt not in {culprit.prompt, mate.prompt}
    )
    out = tmp_path / "run"
    faults = (f"--inject-fault=crash:{culprit.key}", f"--inject-fault=storage:{storage_prompt}")
    flags = _flags(model_dir, "--actors", "1", "--max-retries", "1", *faults)
    assert run_in_process(manifests["plain"], out, *flags) == 3
    catalog = read_catalog(out)
    rows = {r["key"]: r for r in catalog.to_pylist()}
    baseline = {r["key"]: r for r in clean[1].to_pylist()}

    # The culprit crashed in its planned batch, then in its planned batch alone on an
    # actor, then alone: only then is it to blame.
    assert rows[culprit.key]["status"] == "failed" and rows[culprit.key]["attempts"] == 3
    assert "quarantined after 3 attempts" in rows[culprit.key]["error"]
    # Its innocent mate finished alone, and says so (its pixels may differ: measured).
    assert rows[mate.key]["status"] == "ok" and rows[mate.key]["isolated"] is True
    assert rows[mate.key]["batch_id"] == baseline[mate.key]["batch_id"]
    moved = rows[mate.key]["frames_sha256"] != baseline[mate.key]["frames_sha256"]
    print(f"isolated mate's frames {'differ from' if moved else 'equal'} its planned batch's")
    # A storage error retried in the planned batch, then failed; never isolated.
    for row in rows.values():
        if row["prompt"] == storage_prompt:
            assert (row["status"], row["attempts"], row["isolated"]) == ("failed", 2, False)
            assert "storage error" in row["error"]
    # Every other item: exactly the clean run's pixels, retried ones (lost with the
    # culprit's actor, rendered again in their planned batch) included.
    others = {k for k, r in rows.items() if r["prompt"] != storage_prompt} - {culprit.key, mate.key}
    assert {k: rows[k]["frames_sha256"] for k in others} == {
        k: baseline[k]["frames_sha256"] for k in others
    }
    retried = [k for k in others if rows[k]["attempts"] > 1]
    print(f"{len(retried)} innocent items lost with the crashing actor, rendered again exactly")
    assert retried and not any(rows[k]["isolated"] for k in others)
    assert pa.array([rows[k]["status"] for k in others]).unique().to_pylist() == ["ok"]
