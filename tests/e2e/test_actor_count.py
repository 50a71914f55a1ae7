"""`--actors` left out (auto, pipeline/driver/sizing.py): a local run starts as many render
actors as the machine holds, records the count, and renders what one actor renders."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from pipeline.driver import sizing
from tests.conftest import prompt_rows, write_manifest
from tests.support.runs import render_actors_used, run_in_process

FLAGS = ("--model", "null", "--batch-size", "2", "--no-progress")


def test_without_actors_a_local_run_fills_the_machine(ray_local, tmp_path, monkeypatch):
    two_cpus = sizing.Machine(cpus=2, gpus=0, free_memory=64 * 2**30)
    monkeypatch.setattr(sizing.Machine, "local", classmethod(lambda cls: two_cpus))
    manifest = write_manifest(tmp_path / "m.parquet", prompt_rows(8, prefix="auto"))

    assert run_in_process(manifest, tmp_path / "auto", *FLAGS) == 0
    assert run_in_process(manifest, tmp_path / "one", *FLAGS, "--actors", "1") == 0

    summaries = {
        name: json.loads((tmp_path / name / "summary.json").read_text()) for name in ("auto", "one")
    }
    assert summaries["auto"]["actors"] == 2 and summaries["one"]["actors"] == 1
    assert render_actors_used(tmp_path / "auto") == 2  # 4 batches, 2 CPUs: two actors
    assert render_actors_used(tmp_path / "one") == 1

    def frames(name):
        table = pq.read_table(tmp_path / name / "catalog.parquet", columns=["id", "frames_sha256"])
        return dict(zip(*table.to_pydict().values()))

    assert frames("auto") == frames("one") and len(frames("one")) == 8
