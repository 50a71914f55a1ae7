"""catalog.parquet, as promptreel writes it, reads the same in pyarrow, pandas, duckdb and
Hugging Face `datasets`: same status counts, same ids, same uint64 seeds."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.plan.manifest import validate
from pipeline.plan.planner import make_plan
from pipeline.rundir.catalog import build_catalog, write_catalog
from pipeline.rundir.layout import RunDir
from pipeline.schema import LEDGER_SCHEMA

EXPECTED = {"failed": 1, "ok": 3, "pending": 2}


def write_run_catalog(tmp_path):
    """Six manifest rows (one repeats a request) -> 3 ok, 1 failed, 2 pending."""
    rows = [
        {
            "id": f"r{i}",
            "prompt": f"prompt {i % 5}",
            "seed": seed,
            "tags": [f"t{i}"],
            "score": i / 2,
        }
        for i, seed in enumerate([1, 2, 3, 2**64 - 1, 5, 1])
    ]
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("prompt", pa.string()),
            ("seed", pa.uint64()),
            ("tags", pa.list_(pa.string())),
            ("score", pa.float64()),
        ]
    )
    manifest = validate(pa.Table.from_pylist(rows, schema=schema), default_model="null")
    plan = make_plan(manifest, batch_size=2)
    keys = plan.rows["key"].to_pylist()
    assert keys[5] == keys[0]  # the same request: one item, two catalog rows

    def result(key, status, error=""):
        ok = status == "ok"
        return {
            "key": key,
            "status": status,
            "error": error,
            "attempts": 1,
            "uri": f"file:///clips/{key}.mp4" if ok else None,
            "bytes": 10 if ok else None,
            "sha256": "0" * 64 if ok else None,
            "frames_sha256": "1" * 64 if ok else None,
            "render_s": 0.1,
            "encode_s": 0.01 if ok else None,
            "finished_at": "2026-01-01T00:00:00+00:00",
        }

    results = [result(keys[0], "ok"), result(keys[1], "ok"), result(keys[2], "failed", "NaN")]
    ledger = pa.Table.from_pylist(results, schema=LEDGER_SCHEMA)
    write_catalog(
        RunDir(str(tmp_path / "run")), build_catalog(plan.rows, ledger, manifest.passthrough)
    )
    return tmp_path / "run" / "catalog.parquet"


def test_catalog_reads_the_same_everywhere(tmp_path, monkeypatch):
    import duckdb
    import pandas as pd

    path = write_run_catalog(tmp_path)

    table = pq.read_table(path)
    arrow = {e["values"]: e["counts"] for e in pc.value_counts(table["status"]).to_pylist()}
    assert arrow == EXPECTED
    ids, seeds = table["id"].to_pylist(), table["seed"].to_pylist()
    assert ids == [f"r{i}" for i in range(6)] and seeds[3] == 2**64 - 1

    frame = pd.read_parquet(path)
    assert frame.groupby("status").size().to_dict() == EXPECTED
    assert frame["id"].tolist() == ids and [int(s) for s in frame["seed"]] == seeds

    query = f"SELECT status, count(*) FROM read_parquet('{path}') GROUP BY status ORDER BY status"
    assert dict(duckdb.sql(query).fetchall()) == EXPECTED
    assert [s for (s,) in duckdb.sql(f"SELECT seed FROM '{path}'").fetchall()] == seeds

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    dataset = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert Counter(dataset["status"]) == EXPECTED
    assert list(dataset["id"]) == ids and list(dataset["seed"]) == seeds
    assert dataset[0]["tags"] == ["t0"] and dataset[5]["key"] == dataset[0]["key"]
