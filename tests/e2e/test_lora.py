"""LoRA per row through the whole job (issue 18): rows with different adapter sets and rows
without any render in one run on one actor, batches never mix adapter sets, the catalog
records each row's adapters and hashes, and a resume renders nothing again. An adapter
given as a hub id (a repo in the session's offline Hugging Face cache) is pinned to its
commit in the catalog and read by the actor from that commit."""

from __future__ import annotations

import json

from pipeline.cli import main
from tests.conftest import read_catalog, write_manifest
from tests.support.hub_cache import add_snapshot, point_ref, session_hub
from tests.support.lora_files import write_wan_lora

SHAPE = {"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 2}
FLAGS = ("--batch-size", "2", "--actors", "1", "--no-progress", "--flush-interval", "0.2")


def test_rows_with_and_without_adapters_render_in_one_run(ray_local, tmp_path, capsys):
    write_wan_lora(tmp_path / "a.safetensors", seed=1)
    write_wan_lora(tmp_path / "b.safetensors", seed=2)
    pair = json.dumps([{"uri": "a.safetensors", "scale": 0.7}, {"uri": "b.safetensors"}])
    cells = {"plain-0": "[]", "a-0": "a.safetensors", "a-1": "a.safetensors", "ab-0": pair}
    cells |= {"plain-1": "[]", "b-0": None}  # b-0 has no cell: --lora applies; [] opts out
    hub_sha = "c0" * 20  # a's bytes as a hub repo's default LoRA file, at another scale
    repo = tmp_path / "repo"
    repo.mkdir()
    write_wan_lora(repo / "pytorch_lora_weights.safetensors", seed=1)
    add_snapshot(session_hub(), "acme/fox-style", hub_sha, repo)
    point_ref(session_hub(), "acme/fox-style", hub_sha)
    cells["hub-0"] = json.dumps([{"uri": "acme/fox-style", "scale": 0.5}])
    rows = [
        {"id": i, "prompt": "a fox in snow", "seed": int(i[-1]) + 1, **SHAPE, "lora": cell}
        for i, cell in cells.items()
    ]
    manifest = write_manifest(tmp_path / "m.parquet", rows)
    out = tmp_path / "run"
    args = ["render", str(manifest), "--out", str(out), *FLAGS, "--lora", "b.safetensors"]
    assert main(args) == 0

    catalog = {row["id"]: row for row in read_catalog(out).to_pylist()}
    assert {row["status"] for row in catalog.values()} == {"ok"}
    adapters = {i: json.loads(r["lora"]) if r["lora"] else None for i, r in catalog.items()}
    assert adapters["plain-0"] is None and adapters["plain-1"] is None
    assert adapters["b-0"] == [
        {
            "uri": str(tmp_path / "b.safetensors"),
            "scale": 1.0,
            "sha256": adapters["b-0"][0]["sha256"],
        }
    ]
    assert [(a["uri"], a["scale"]) for a in adapters["ab-0"]] == [
        (str(tmp_path / "a.safetensors"), 0.7),
        (str(tmp_path / "b.safetensors"), 1.0),
    ]
    assert adapters["a-0"][0]["sha256"] == adapters["ab-0"][0]["sha256"]
    pinned = f"acme/fox-style@{hub_sha}:pytorch_lora_weights.safetensors"
    assert adapters["hub-0"] == [{**adapters["a-0"][0], "uri": pinned, "scale": 0.5}]
    by_batch = {}
    for row in catalog.values():
        by_batch.setdefault(row["batch_id"], set()).add(row["lora"])
    assert all(len(sets) == 1 for sets in by_batch.values())  # never mixed in one call
    frames = {i: r["frames_sha256"] for i, r in catalog.items()}
    assert frames["a-0"] != frames["plain-0"] and frames["ab-0"] != frames["a-0"]
    assert frames["hub-0"] not in (frames["a-0"], frames["plain-0"])  # a at 0.5: its own
    assert frames["b-0"] not in (frames["plain-0"], frames["a-0"])  # same prompt and seed

    capsys.readouterr()
    assert main(args) == 0
    assert "(0 rendered this run)" in capsys.readouterr().out
