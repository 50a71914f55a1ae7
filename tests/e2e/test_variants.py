"""Variants through the CLI (`--variants`, a `variants` column): one catalog row and one clip
per variant, and more variants later render only the new ones. The null model: the plan is
under test here; variant pixels are those of a row with that seed (unit tests: keys)."""

from __future__ import annotations

from pipeline.cli import main
from tests.conftest import read_catalog, write_manifest
from tests.support.runs import assert_exactly_once

FLAGS = ("--model", "null", "--batch-size", "2", "--no-progress", "--flush-interval", "0.2")
SHAPE = {"height": 16, "width": 16, "num_frames": 3}


def test_variants_render_once_each_and_grow_incrementally(ray_local, tmp_path, capsys):
    rows = [
        {"id": "fox", "prompt": "a red fox", "seed": "7", "variants": None, **SHAPE},
        {"id": "owl", "prompt": "an owl", "seed": str(2**64 - 1), "variants": 1, **SHAPE},
    ]
    manifest = write_manifest(tmp_path / "m.parquet", rows)
    out = tmp_path / "run"
    args = ["render", str(manifest), "--out", str(out), *FLAGS]
    assert main([*args, "--variants", "3"]) == 0
    catalog = read_catalog(out)
    assert catalog["id"].to_pylist() == ["fox", "fox~v1", "fox~v2", "owl"]
    assert catalog["source_id"].to_pylist() == ["fox", "fox", "fox", "owl"]
    assert catalog["variant"].to_pylist() == [0, 1, 2, 0]
    assert catalog["seed"].to_pylist() == [7, 8, 9, 2**64 - 1]
    assert catalog["status"].to_pylist() == ["ok"] * 4
    assert_exactly_once(out, catalog["id"].to_pylist())
    first = {r["id"]: r["sha256"] for r in catalog.to_pylist()}

    capsys.readouterr()
    assert main([*args, "--variants", "4"]) == 0  # one more for fox; owl asks for 1
    assert "(1 rendered this run)" in capsys.readouterr().out
    grown = read_catalog(out)
    assert grown["id"].to_pylist() == ["fox", "fox~v1", "fox~v2", "fox~v3", "owl"]
    assert {i: s for i, s in zip(grown["id"].to_pylist(), grown["sha256"].to_pylist())} == {
        **first,
        "fox~v3": grown["sha256"][3].as_py(),
    }
