"""`promptreel export`: each target read back by its real consumer (webdataset, datasets'
webdataset and videofolder builders, VBench's own lookup rules), from the session's
source runs (tests/support/export_run.py)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from tests.conftest import read_catalog
from tests.support.export_data import FAILING, PROMPTS

pytest_plugins = ("tests.support.export_run",)  # the session's source runs
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def run(export_source_run) -> Path:
    return export_source_run


@pytest.fixture
def gif_run(export_gif_run) -> Path:
    return export_gif_run


def export(run, kind, dest, *flags, capsys=None) -> tuple[int, str, str]:
    code = main(["export", str(run), "--to", kind, str(dest), "--no-progress", *map(str, flags)])
    out = capsys.readouterr() if capsys else None
    return code, out.out if out else "", out.err if out else ""


def ok_rows(run) -> list[dict]:
    return [r for r in read_catalog(run).to_pylist() if r["status"] == "ok"]


def files_in(dest: Path) -> set[str]:
    return {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_webdataset_reads_back_with_webdataset_and_datasets(run, tmp_path):
    import datasets
    import webdataset as wds

    dest = tmp_path / "wds"
    assert export(run, "webdataset", dest, "--shard-size", 10)[0] == 0
    assert files_in(dest) == {
        *(f"0000{i}{suffix}" for i in range(3) for suffix in (".tar", ".parquet", "_stats.json")),
        "export.json",
    }
    rows = ok_rows(run)
    tars = sorted(str(p) for p in dest.glob("*.tar"))
    samples = list(wds.WebDataset(tars, shardshuffle=False))
    assert len(samples) == len(rows) == 23
    for sample, row in zip(samples, rows):
        assert "." not in sample["__key__"]
        assert sha(sample["mp4"]) == row["sha256"]
        assert sample["txt"].decode() == row["prompt"]
        record = json.loads(sample["json"])
        assert record["id"] == row["id"] and record["seed"] == str(row["seed"])
        assert record["text"] == row["text"]  # passthrough
    assert {json.loads(s["json"])["seed"] for s in samples} >= {str(2**64 - 1), str(2**63), "0"}

    stats = json.loads((dest / "00002_stats.json").read_text())
    assert stats["count"] == 3 and stats["tar_sha256"] == sha((dest / "00002.tar").read_bytes())
    index = json.loads((dest / "export.json").read_text())
    assert [s["nsamples"] for s in index["shards"]] == [10, 10, 3]
    assert index["left_out"] == {"failed": 1}

    ds = datasets.load_dataset(
        "webdataset", data_files=tars, split="train", cache_dir=str(tmp_path / "hf")
    ).cast_column("mp4", datasets.Video(decode=False))
    assert ds.num_rows == 23
    assert [r["json"]["seed"] for r in ds] == [str(r["seed"]) for r in rows]
    assert [sha(r["mp4"]["bytes"]) for r in ds] == [r["sha256"] for r in rows]
    assert ds[3]["txt"] == rows[3]["prompt"]

    parquet = pq.read_table(dest / "00000.parquet")
    assert parquet["seed"].type == pa.uint64() and parquet["id"].to_pylist() == [
        r["id"] for r in rows[:10]
    ]


def test_hf_videofolder_loads_with_seeds_as_text(run, tmp_path, capsys):
    import datasets

    dest = tmp_path / "hf"
    code, out, _ = export(run, "hf", dest, capsys=capsys)
    assert code == 0
    assert "'catalog_text'" in out  # the passthrough `text` column did not replace the prompt
    rows = ok_rows(run)
    assert files_in(dest) == {"metadata.jsonl"} | {
        f"clips/{r['key'][:2]}/{r['key']}.mp4" for r in rows
    }
    # 23 rows, 18 clips: cat-a and cat-b ask the same, and seed 2**63 renders as seed 0.
    assert len(files_in(dest)) == 1 + 18
    ds = datasets.load_dataset(
        "videofolder", data_dir=str(dest), split="train", cache_dir=str(tmp_path / "cache")
    ).cast_column("video", datasets.Video(decode=False))
    assert ds.num_rows == 23
    assert ds.features["seed"].dtype == "string"
    assert ds["seed"] == [str(r["seed"]) for r in rows] and str(2**64 - 1) in ds["seed"]
    assert ds["text"] == [r["prompt"] for r in rows]
    assert ds["catalog_text"] == [r["text"] for r in rows]
    assert ds["id"] == [r["id"] for r in rows] and ds["vbench_name"][0] == rows[0]["vbench_name"]
    for item, row in zip(ds, rows):
        assert sha(Path(item["video"]["path"]).read_bytes()) == row["sha256"]


def test_hf_refuses_other_formats(gif_run, tmp_path, capsys):
    code, _, err = export(gif_run, "hf", tmp_path / "hf", capsys=capsys)
    assert code == 2
    assert "mp4" in err and "2 gif" in err
    assert not (tmp_path / "hf").exists()


def test_vbench_refuses_names_that_cannot_be_files(run, tmp_path, capsys):
    code, _, err = export(run, "vbench", tmp_path / "vb", capsys=capsys)
    assert code == 2
    assert "5 row(s)" in err and "--name-column" in err
    for s in range(5):
        assert f"row {15 + s} (id 'p3.s{s}')" in err
    assert not (tmp_path / "vb").exists()


def test_vbench_folder_follows_vbench_lookup(run, tmp_path, capsys):
    dest = tmp_path / "videos" / "overall_consistency"
    code, out, _ = export(run, "vbench", dest, "--name-column", "vbench_name", capsys=capsys)
    assert code == 0
    names = os.listdir(dest)
    # Every prompt x 5 seeds, i = 0..4, and nothing else but the extra rows' own clips.
    wanted = {f"{n}-{i}.mp4" for n in [*PROMPTS[:3], "script alert"] for i in range(5)}
    assert set(names) == wanted | {"Cat-0.mp4", "Cat-1.mp4", "cat-0.mp4"}
    # VBench's standard mode: the extension of the first file listed, then an exact lookup.
    postfix = Path(names[0]).suffix
    for prompt in PROMPTS[:3]:
        assert all(f"{prompt}-{i}{postfix}" in names for i in range(5))
    rows = {r["id"]: r for r in ok_rows(run)}
    assert sha((dest / f"{PROMPTS[1]}-1.mp4").read_bytes()) == rows["p1.s1"]["sha256"]
    # Custom mode's prompt file, beside DEST: {file name: prompt}.
    prompts = json.loads((dest.parent / "overall_consistency.prompts.json").read_text())
    assert set(prompts) == set(names)
    assert prompts["script alert-2.mp4"] == PROMPTS[3]
    assert f'5/5  "{PROMPTS[2]}"' in out
    assert f'0/1  "{FAILING}"  (missing -0 failed)' in out


def test_files_get_human_unique_names_and_an_index(run, tmp_path):
    dest = tmp_path / "files"
    assert export(run, "files", dest)[0] == 0
    with open(dest / "index.csv", newline="", encoding="utf-8") as handle:
        index = list(csv.DictReader(handle))
    rows = ok_rows(run)
    assert [e["id"] for e in index] == [r["id"] for r in rows]
    assert files_in(dest) == {"index.csv"} | {e["file_name"] for e in index}
    assert len({e["file_name"].casefold() for e in index}) == 23
    by_id = {e["id"]: e["file_name"] for e in index}
    assert by_id["p1.s0"] == "anime,_cute_rat_running_in_a_forest_seed3048053658270753.mp4"
    assert by_id["p0.s1"] == f"A_3D_model_of_a_1800s_victorian_house_seed{2**64 - 1}.mp4"
    assert by_id["p3.s2"] == "script_alert('x')__script_seed0.mp4"
    assert by_id["cat-a"] == "Cat_seed7.mp4"
    assert by_id["cat-b"].startswith("Cat_seed7_") and by_id["cat-lower"].startswith("cat_seed7_")
    for entry, row in zip(index, rows):
        assert sha((dest / entry["file_name"]).read_bytes()) == row["sha256"]
        assert entry["seed"] == str(row["seed"]) and entry["prompt"] == row["prompt"]


def test_other_formats_keep_their_extension(gif_run, tmp_path):
    import webdataset as wds

    assert export(gif_run, "webdataset", tmp_path / "wds")[0] == 0
    samples = list(wds.WebDataset(str(tmp_path / "wds" / "00000.tar"), shardshuffle=False))
    assert [sorted(k for k in s if not k.startswith("__")) for s in samples] == [
        ["gif", "json", "txt"]
    ] * 2
    assert samples[0]["gif"][:6] == b"GIF89a"
    assert export(gif_run, "files", tmp_path / "files")[0] == 0
    assert "a_gif,_take_1_seed1.gif" in files_in(tmp_path / "files")
    assert export(gif_run, "vbench", tmp_path / "vb", "--name-column", "vbench_name")[0] == 0
    assert set(os.listdir(tmp_path / "vb")) == {"g-0.gif", "g-1.gif"}


def test_a_dest_holding_other_files_is_refused(run, tmp_path, capsys):
    dest = tmp_path / "vb"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    code, _, err = export(run, "vbench", dest, "--name-column", "vbench_name", capsys=capsys)
    assert code == 2 and "notes.txt: not part of this export" in err
    assert os.listdir(dest) == ["notes.txt"]


def test_an_export_with_other_options_is_not_overwritten(run, tmp_path, capsys):
    dest = tmp_path / "wds"
    assert export(run, "webdataset", dest, "--shard-size", 3)[0] == 0
    before = {p: (dest / p).read_bytes() for p in files_in(dest)}
    code, _, err = export(run, "webdataset", dest, "--shard-size", 10, capsys=capsys)
    assert code == 2
    assert "00000_stats.json: records other rows" in err and "export.json: differs" in err
    assert "holds 19 file(s)" in err  # 3 stats, export.json, and 5 shards x 3 files too many
    assert {p: (dest / p).read_bytes() for p in files_in(dest)} == before


def test_bad_destinations_and_flags_are_refused(run, tmp_path, capsys):
    code, _, err = export(run, "files", run / "exported", capsys=capsys)
    assert code == 2 and "inside the run dir" in err
    code, _, err = export(run, "webdataset", tmp_path / "w", "--name-column", "id", capsys=capsys)
    assert code == 2 and "--name-column applies to --to vbench and files" in err
    code, _, err = export(run, "vbench", tmp_path / "v", "--name-column", "nope", capsys=capsys)
    assert code == 2 and "no such column" in err
    assert not (run / "exported").exists() and not list(tmp_path.iterdir())


def test_an_unfinished_run_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    code, _, err = export(tmp_path / "run", "files", tmp_path / "out", capsys=capsys)
    assert code == 2 and "no catalog.parquet" in err


def test_export_is_a_pure_function_of_the_catalog(run, tmp_path):
    """Two exports of one run are byte-identical, and a second run over a complete
    export writes nothing."""
    for kind in ("webdataset", "files"):
        a, b = tmp_path / f"{kind}-a", tmp_path / f"{kind}-b"
        assert export(run, kind, a)[0] == export(run, kind, b)[0] == 0
        assert {p: (a / p).read_bytes() for p in files_in(a)} == {
            p: (b / p).read_bytes() for p in files_in(b)
        }
        before = {p: os.stat(a / p).st_mtime_ns for p in files_in(a)}
        assert export(run, kind, a)[0] == 0
        assert {p: os.stat(a / p).st_mtime_ns for p in files_in(a)} == before
