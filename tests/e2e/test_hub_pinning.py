"""Pinned weights (issue 9, part 3): a hub id resolves to a commit sha before planning.

No network: a Hugging Face cache is built locally in the hub's own layout
(`models--acme--house-video/{blobs,refs/main,snapshots/<sha>/}`, tests/support/hub_cache.py) in a
temp HF_HOME. Snapshot A holds the tiny Wan checkpoint, snapshot B the same
with other transformer weights. The repo's name says nothing about its family: it has to
come from the snapshot's model_index.json. Every render is a real subprocess that joins the
session's Ray as `ray job submit` runs a job: HF_HOME / HF_HUB_OFFLINE reach the driver in
its environment and the actors through the job's runtime_env, as they would on a cluster.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest

from pipeline.errors import ConfigError
from pipeline.models.hub import family_from_model_index, pin_hub_model
from pipeline.outputs.encode import decode_clip
from tests.conftest import REPO, prompt_rows, read_catalog, run_cli, write_manifest
from tests.support.hub_cache import add_snapshot, point_ref
from tests.support.runs import joined_env, poll, render_actors_used

REPO_ID = "acme/house-video"
SHA_A = "a1" * 20
SHA_B = "b2" * 20
ROW = {"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 2}
FLAGS = ("--batch-size", "2", "--no-progress", "--flush-interval", "0.2")


def other_weights(source: Path, target: Path) -> Path:
    """A copy of the checkpoint whose transformer weights are scaled: other pixels."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    weights = next((target / "transformer").glob("*.safetensors"))
    tensors = {name: tensor * 1.5 for name, tensor in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    return target


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    from pipeline.models.tiny import ensure_tiny_model

    home = tmp_path_factory.mktemp("hf_home")
    tiny = ensure_tiny_model()
    add_snapshot(home / "hub", REPO_ID, SHA_A, tiny)
    add_snapshot(home / "hub", REPO_ID, SHA_B, other_weights(tiny, home / "weights-b"))
    point_ref(home / "hub", REPO_ID, SHA_A)
    return home


@pytest.fixture(scope="module")
def hub_env(ray_local):
    def env(home: Path, offline: bool = True) -> dict:
        return joined_env(ray_local, HF_HOME=str(home), HF_HUB_OFFLINE="1" if offline else "")

    return env


@pytest.fixture(scope="module")
def first_run(hf_home, hub_env, tmp_path_factory):
    """Three rows rendered from `--model acme/house-video` (refs/main -> A), offline."""
    root = tmp_path_factory.mktemp("first_run")
    manifest = write_manifest(root / "m.parquet", prompt_rows(3, "house", **ROW))
    out = root / "out"
    done = run_cli(
        "render", manifest, "--out", out, "--model", REPO_ID, *FLAGS, env=hub_env(hf_home)
    )
    assert done.returncode == 0, done.stderr
    return manifest, out


def copy_run(out: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(out, target)
    return target


def job_json(out: Path) -> dict:
    return json.loads((out / "job.json").read_text())


def edit_job_json(out: Path, edit) -> None:
    job = job_json(out)
    edit(job)
    (out / "job.json").write_text(json.dumps(job))


def test_cache_layout_resolves_refs_and_shas(hf_home, tmp_path):
    hub = str(hf_home / "hub")
    pin = pin_hub_model(REPO_ID, None, cache_dir=hub, offline=True)
    assert pin.sha == SHA_A
    assert pin.model_index.parent.name == SHA_A
    assert family_from_model_index(pin.model_index)[1].name == "wan"  # not from the name
    assert pin_hub_model(REPO_ID, SHA_B, cache_dir=hub, offline=True).sha == SHA_B
    point_ref(hf_home / "hub", REPO_ID, SHA_B, ref="v2")  # a tag in refs/
    assert pin_hub_model(REPO_ID, "v2", cache_dir=hub, offline=True).sha == SHA_B

    with pytest.raises(ConfigError) as missing:
        pin_hub_model(REPO_ID, "c3" * 20, cache_dir=hub, offline=True)
    assert f"commit {'c3' * 20} is not in the local Hugging Face cache" in str(missing.value)

    odd = add_snapshot(tmp_path / "hub", "acme/odd", SHA_A, hf_home / "weights-b")
    (odd / "model_index.json").unlink()
    (odd / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    point_ref(tmp_path / "hub", "acme/odd", SHA_A)
    odd_pin = pin_hub_model("acme/odd", None, cache_dir=str(tmp_path / "hub"), offline=True)
    assert family_from_model_index(odd_pin.model_index) == ("FluxPipeline", None)


def test_render_from_hub_id_records_the_sha(first_run):
    manifest, out = first_run
    catalog = read_catalog(out)
    assert catalog["status"].to_pylist() == ["ok"] * 3
    for uri in catalog["uri"].to_pylist():
        with fsspec.open(uri, "rb") as handle:
            assert decode_clip(handle.read()).shape == (5, 32, 32, 3)
    job = job_json(out)
    assert job["model"] == f"hub:{REPO_ID}@{SHA_A}"  # in every key, via the fingerprint
    assert job["hub_pins"] == {REPO_ID: SHA_A}
    assert job["versions"] == {
        name: importlib.metadata.version(name) for name in ("torch", "diffusers", "transformers")
    }


def test_sha_spec_shares_keys_and_picks_its_weights(hub_env, hf_home, first_run, tmp_path):
    """One render (one Ray, one actor loading both commits in turn): rows at `@A` share the
    keys `acme/house-video` got at A; a row at `@B` gets B's weights and pixels."""
    manifest, out = first_run
    out = copy_run(out, tmp_path)
    before = read_catalog(out)
    pinned_a, pinned_b = f"{REPO_ID}@{SHA_A}", f"{REPO_ID}@{SHA_B}"
    rows = prompt_rows(3, "house", **ROW) + prompt_rows(1, "extra", **ROW)
    rows += [{**prompt_rows(1, "house", **ROW)[0], "id": "house-0-at-b", "model": pinned_b}]
    grown = write_manifest(tmp_path / "grown.parquet", rows)
    done = run_cli("render", grown, "--out", out, "--model", pinned_a, *FLAGS, env=hub_env(hf_home))
    assert done.returncode == 0, done.stderr
    assert "(2 rendered this run)" in done.stdout  # the extra row and the row at B
    after = read_catalog(out)
    assert after["key"].to_pylist()[:3] == before["key"].to_pylist()
    assert after["status"].to_pylist() == ["ok"] * 5
    at_b = after.to_pylist()[4]
    assert at_b["key"] != before["key"][0].as_py()
    assert at_b["frames_sha256"] != before["frames_sha256"][0].as_py()  # B's weights, B's pixels
    assert render_actors_used(out) == 1


def test_moved_ref_is_refused_naming_both_shas(hub_env, hf_home, first_run, tmp_path):
    manifest, out = first_run
    out = copy_run(out, tmp_path)
    home = tmp_path / "hf_home"
    shutil.copytree(hf_home, home, symlinks=True)
    point_ref(home / "hub", REPO_ID, SHA_B)
    job_before = (out / "job.json").read_bytes()

    refused = run_cli(
        "render", manifest, "--out", out, "--model", REPO_ID, *FLAGS, env=hub_env(home)
    )
    assert refused.returncode == 2, refused.stderr
    assert SHA_A in refused.stderr and SHA_B in refused.stderr
    assert f"--model {REPO_ID}@{SHA_A}" in refused.stderr
    assert (out / "job.json").read_bytes() == job_before

    pinned = run_cli(
        "render", manifest, "--out", out, "--model", f"{REPO_ID}@{SHA_A}", *FLAGS, env=hub_env(home)
    )
    assert pinned.returncode == 0, pinned.stderr
    assert "(0 rendered this run)" in pinned.stdout
    # verify re-renders at the run's own commit, though refs/main now names B
    checked = run_cli("verify", out, "--sample", "2", env=hub_env(home))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 problem(s)" in checked.stdout


def test_actors_load_the_drivers_commit_after_the_ref_moves(hub_env, hf_home, first_run, tmp_path):
    """refs/main moves to B after the driver resolved A (job.json written) and before Ray or
    any actor starts (the driver waits there: the test-only `pause:start`): they load A."""
    home = tmp_path / "hf_home"
    shutil.copytree(hf_home, home, symlinks=True)
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(3, "house", **ROW))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipeline", "render", str(manifest), "--out", str(out)]
    log_path = tmp_path / "log"
    with open(log_path, "wb") as log:
        driver = subprocess.Popen(
            [*command, "--model", REPO_ID, *FLAGS, "--inject-fault", "pause:start"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **hub_env(home)},
        )
    # The driver pins A, writes job.json, then stops before Ray or any actor starts.
    poll(lambda: b"paused before start" in log_path.read_bytes(), driver, log_path)
    point_ref(home / "hub", REPO_ID, SHA_B)
    driver.stdin.write(b"go\n")
    driver.stdin.close()
    assert driver.wait(timeout=300) == 0, (tmp_path / "log").read_text()
    assert job_json(out)["hub_pins"] == {REPO_ID: SHA_A}
    rendered = read_catalog(out).to_pylist()
    at_a = {row["key"]: row["frames_sha256"] for row in read_catalog(first_run[1]).to_pylist()}
    assert {row["key"]: row["frames_sha256"] for row in rendered} == at_a


def test_version_drift_refused_unless_allowed(hub_env, hf_home, first_run, tmp_path):
    manifest, out = first_run
    out = copy_run(out, tmp_path)
    edit_job_json(out, lambda job: job["versions"].update(torch="1.0.0", diffusers="0.1.0"))
    args = ("render", manifest, "--out", out, "--model", REPO_ID, *FLAGS)

    refused = run_cli(*args, env=hub_env(hf_home))
    assert refused.returncode == 2
    torch_now = importlib.metadata.version("torch")
    assert f"torch: run dir has '1.0.0', this environment has '{torch_now}'" in refused.stderr
    assert "diffusers: run dir has '0.1.0'" in refused.stderr
    assert "transformers:" not in refused.stderr  # only what differs is listed
    assert "--allow-version-change" in refused.stderr

    allowed = run_cli(*args, "--allow-version-change", env=hub_env(hf_home))
    assert allowed.returncode == 0, allowed.stderr
    job = job_json(out)
    assert job["versions"]["torch"] == torch_now
    assert job["earlier_versions"][0]["versions"]["torch"] == "1.0.0"
    again = run_cli(*args, env=hub_env(hf_home))  # the new versions are the run's now
    assert again.returncode == 0, again.stderr


def test_job_json_without_versions_resumes_and_records_them(hub_env, hf_home, first_run, tmp_path):
    manifest, out = first_run
    out = copy_run(out, tmp_path)
    edit_job_json(out, lambda job: [job.pop("versions"), job.pop("hub_pins")])
    done = run_cli(
        "render", manifest, "--out", out, "--model", REPO_ID, *FLAGS, env=hub_env(hf_home)
    )
    assert done.returncode == 0, done.stderr
    job = job_json(out)
    assert job["versions"]["diffusers"] == importlib.metadata.version("diffusers")
    assert job["earlier_versions"][0]["versions"] is None
    assert job["hub_pins"] == {REPO_ID: SHA_A}


def test_unknown_hub_id_offline_exits_2_once(hub_env, hf_home, tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(3, "x", **ROW))
    args = ("render", manifest, "--out", tmp_path / "out", "--model", "acme/missing")
    refused = run_cli(*args, env=hub_env(hf_home))
    assert refused.returncode == 2
    message = refused.stderr
    assert "model 'acme/missing': it is not in the local Hugging Face cache" in message
    assert str(hf_home / "hub") in message and "HF_HUB_OFFLINE is set" in message
    assert "hf download acme/missing" in message
    assert message.count("acme/missing'") == 1  # one error, not one per row
    assert not (tmp_path / "out").exists()

    cells = write_manifest(
        tmp_path / "cells.parquet", [{"prompt": "a", "seed": 1, "model": "acme/gone"}]
    )
    invalid = run_cli("validate", cells, env=hub_env(hf_home))
    assert invalid.returncode == 2
    assert "row 0: model: model 'acme/gone'" in invalid.stderr


def test_unreachable_hub_falls_back_to_the_cache(hub_env, hf_home, tmp_path):
    """Online allowed, hub unreachable (a closed port on loopback, no DNS, no network)."""
    env = {**hub_env(hf_home, offline=False), "HF_ENDPOINT": "http://127.0.0.1:9"}
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(1, "x", **ROW))
    cached = run_cli("plan", manifest, "--model", REPO_ID, env=env)
    assert cached.returncode == 0, cached.stderr
    missing = run_cli("plan", manifest, "--model", "acme/missing", env=env)
    assert missing.returncode == 2
    assert "the hub could not be reached" in missing.stderr
    assert "hf download acme/missing" in missing.stderr
