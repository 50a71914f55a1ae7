"""Manifest reading and validation: every problem, by row and id, at once. No Ray."""

from __future__ import annotations

import csv
import gzip
import json

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import ConfigError, ManifestError
from pipeline.plan.manifest import (
    RowProblem,
    ValidatedManifest,
    load,
    read_manifest,
    validate,
)
from pipeline.schema import VALIDATED_COLUMNS
from tests.support.hub_cache import cache_model_index

MAX = 2**64 - 1
WAN = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
ALIAS = 12345 + 7 * 2**32  # same low 32 bits as 12345


def problems_of(table: pa.Table, **options) -> tuple[str, list[RowProblem]]:
    with pytest.raises(ManifestError) as info:
        validate(table, **options)
    return str(info.value), info.value.problems


def bad_rows(problems: list[RowProblem], field: str) -> list[int]:
    return [p.row for p in problems if p.field == field]


def write_csv(path, rows: list[dict]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def write_jsonl(path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return str(path)


# ------------------------------------------------------------------------------ per-field errors


def test_row_problem_str():
    assert str(RowProblem(3, "clip-7", "seed", "expected x, got '-5'")) == (
        "row 3 (id 'clip-7'): seed: expected x, got '-5'"
    )
    assert str(RowProblem(4, None, "seed", "m")) == "row 4: seed: m"


def test_prompt_problems_all_reported():
    table = pa.table(
        {"id": ["ok", "null", "empty", "blank"], "prompt": ["a cat", None, "", " \t\u3000"]}
    ).append_column("seed", pa.array([1, 2, 3, 4]))
    text, problems = problems_of(table)
    assert bad_rows(problems, "prompt") == [1, 2, 3]
    for row, row_id in ((1, "null"), (2, "empty"), (3, "blank")):
        assert f"row {row} (id '{row_id}'): prompt: expected non-empty text" in text


def test_seed_problems_all_reported():
    seeds = ["0", "-1", "12a", str(2**64), "1.5", "", " 42 ", str(MAX), None]
    table = pa.table({"id": [f"s{i}" for i in range(9)], "prompt": ["p"] * 9, "seed": seeds})
    text, problems = problems_of(table)
    assert bad_rows(problems, "seed") == [1, 2, 3, 4, 5, 8]
    assert "row 1 (id 's1'): seed: expected an integer in 0..2**64-1, got '-1'" in text
    assert f"row 3 (id 's3'): seed: expected an integer in 0..2**64-1, got '{2**64}'" in text
    assert "row 2 (id 's2')" in text and "got '12a'" in text and "got '1.5'" in text


@pytest.mark.parametrize(
    "seeds, bad",
    [
        (pa.array([0, -1, 5, None], pa.int64()), [1, 3]),
        (pa.array([0.0, 1.5, 3.0, float(2**53), float("nan")]), [1, 3, 4]),
        (pa.array([True, False]), [0, 1]),
    ],
)
def test_seed_problems_typed_columns(seeds, bad):
    table = pa.table({"prompt": ["p"] * len(seeds), "seed": seeds})
    text, problems = problems_of(table)
    assert bad_rows(problems, "seed") == bad
    assert all(f"row {row}: seed: expected an integer in 0..2**64-1" in text for row in bad)


def test_seed_edges_valid_in_every_format(tmp_path):
    parquet = tmp_path / "m.parquet"
    seeds = pa.array([0, MAX], pa.uint64())
    pq.write_table(pa.table({"prompt": ["a", "b"], "seed": seeds}), parquet)
    rows = [{"prompt": "a", "seed": 0}, {"prompt": "b", "seed": MAX}]
    csv_path = write_csv(tmp_path / "m.csv", rows)
    jsonl = write_jsonl(tmp_path / "m.jsonl", rows)
    for url in (str(parquet), csv_path, jsonl):
        manifest = validate(read_manifest(url))
        assert manifest.table["seed"].type == pa.uint64()
        assert manifest.table["seed"].to_pylist() == [0, MAX], url


def test_bad_seeds_in_jsonl_and_csv(tmp_path):
    seeds = {"big": 2**64, "neg": -1, "half": 1.5, "text": "12a", "ok": 7, "ok2": " 8 "}
    rows = [{"id": k, "prompt": "a", "seed": v} for k, v in seeds.items()]
    for url in (write_jsonl(tmp_path / "m.jsonl", rows), write_csv(tmp_path / "m.csv", rows)):
        text, problems = problems_of(read_manifest(url))
        assert bad_rows(problems, "seed") == [0, 1, 2, 3], url
        assert f"row 0 (id 'big'): seed: expected an integer in 0..2**64-1, got '{2**64}'" in text
        assert "row 1 (id 'neg')" in text and "got '-1'" in text
        assert "row 2 (id 'half')" in text and "got '1.5'" in text
        assert "row 3 (id 'text')" in text and "got '12a'" in text


def test_duplicate_ids_name_first_row():
    table = pa.table(
        {"id": ["a", "b", "a", None, "", "b", "a"], "prompt": ["p"] * 7, "seed": list(range(7))}
    )
    text, problems = problems_of(table)
    assert bad_rows(problems, "id") == [2, 5, 6]
    assert "row 2 (id 'a'): id: expected a unique id, got 'a' again (first used on row 0)" in text
    assert "row 5 (id 'b')" in text and "first used on row 1" in text
    assert "row 6 (id 'a')" in text


def test_numeric_parameter_problems():
    table = pa.table(
        {
            "id": ["ok", "half", "zero", "neg", "text", "fps", "guidance"],
            "prompt": ["p"] * 7,
            "seed": list(range(7)),
            "height": ["64.0", "64.5", "0", "-1", "abc", None, None],
            "fps": [8, 8, 8, 8, 8, 0, None],
            "guidance_scale": [1.0, 0.0, None, None, None, None, -1.0],
        }
    )
    text, problems = problems_of(table)
    assert bad_rows(problems, "height") == [1, 2, 3, 4]
    assert "row 1 (id 'half'): height: expected a positive integer up to 8192, got '64.5'" in text
    assert "row 4 (id 'text'): height: expected a positive integer up to 8192, got 'abc'" in text
    assert "row 5 (id 'fps'): fps: expected a positive finite number, got 0" in text
    assert "row 6 (id 'guidance'): guidance_scale: expected a finite number >= 0, got -1.0" in text


def test_unknown_model():
    table = pa.table(
        {
            "id": ["x", "y", "z"],
            "prompt": ["p"] * 3,
            "seed": [1, 2, 3],
            "model": ["tiny", "nope", "nope"],
        }
    )
    text, problems = problems_of(table)
    assert bad_rows(problems, "model") == [1, 2]
    assert "row 1 (id 'y'): model: unknown model 'nope'" in text and "row 2 (id 'z')" in text


def test_family_shape_rules(tmp_path):
    # hub ids resolve before validation: their family comes from a cached model_index.json
    cache_model_index(tmp_path, "Lightricks/LTX-Video", "LTXPipeline")
    cache_model_index(tmp_path, WAN, "WanPipeline")
    table = pa.table(
        {
            "id": ["ok", "frames", "width", "ltx", "wan"],
            "prompt": ["p"] * 5,
            "seed": [1, 2, 3, 4, 5],
            "num_frames": [9, 10, 9, 17, 10],
            "width": [64, 64, 70, 48, None],
            "model": ["tiny", "tiny", "tiny", "Lightricks/LTX-Video", WAN],
        }
    )
    text, problems = problems_of(table)
    # LTX's default height 480 is a multiple of 32 and 17 = 8*2+1 frames: only its width fails.
    assert [(p.row, p.field) for p in problems] == [
        (1, "num_frames"),
        (2, "width"),
        (3, "width"),
        (4, "num_frames"),
    ]
    assert "row 4 (id 'wan'): num_frames: expected 4k+1 frames for wan models" in text
    assert "row 1 (id 'frames'): num_frames: expected 4k+1 frames" in text and "got 10" in text
    assert "row 2 (id 'width'): width: expected a multiple of 16" in text and "got 70" in text
    assert (
        "row 3 (id 'ltx'): width: expected a multiple of 32 for ltx models "
        "(nearest: 32 or 64), got 48" in text
    )


def test_reserved_column():
    table = pa.table({"prompt": ["p"], "seed": [1], "status": ["x"], "key": ["k"], "row": [0]})
    text, problems = problems_of(table)
    assert [(p.row, p.field) for p in problems] == [(None, "status"), (None, "key"), (None, "row")]
    assert "column 'status' is reserved for the catalog output; rename it" in text
    assert "column 'key' is reserved" in text


def test_missing_required_columns():
    text, problems = problems_of(pa.table({"prompt": ["p"]}))
    assert [(p.row, p.field) for p in problems] == [(None, "seed")]
    assert "column 'seed' is required" in text
    text, _ = problems_of(pa.table({"caption": ["p"]}))
    assert "column 'prompt' is required" in text and "column 'seed' is required" in text


# -------------------------------------------------------------------------- seeds modulo 2**32


def test_seed_alias_warning_names_both_rows():
    table = pa.table(
        {
            "id": ["first", "alias", "same", "other-prompt"],
            "prompt": ["a fox", "a fox", "a fox", "a dog"],
            "seed": pa.array([12345, ALIAS, 12345, ALIAS], pa.uint64()),
        }
    )
    manifest = validate(table)
    assert [(w.row, w.id, w.field) for w in manifest.warnings] == [(1, "alias", "seed")]
    warning = str(manifest.warnings[0])
    assert warning.startswith("row 1 (id 'alias'): seed:") and "row 0 (id 'first')" in warning
    assert "low 32 bits" in warning and "share a clip" in warning
    assert manifest.table["seed"].to_pylist() == [12345, ALIAS, 12345, ALIAS]  # user's seeds kept

    text, problems = problems_of(table, strict_seeds=True)
    assert [(p.row, p.field) for p in problems] == [(1, "seed")]
    assert "row 1 (id 'alias')" in text and "row 0 (id 'first')" in text


def test_identical_seeds_and_different_requests_are_not_aliases():
    table = pa.table(
        {
            "prompt": ["a", "a", "a", "a"],
            "seed": pa.array([ALIAS, ALIAS, 12345, 12345 + 2**40], pa.uint64()),
            "height": [64, 64, 32, 48],  # rows 2 and 3 ask for other shapes than rows 0-1
        }
    )
    assert validate(table, strict_seeds=True).warnings == ()


# ------------------------------------------------------------------------ reading: formats, URLs

PROMPTS = [
    "café au lait, naïve façade — 日本語のテキスト 🎬🦊",
    "שלום עולם: טקסט מימין לשמאל ‏(RTL) مرحبا بالعالم",
    'quotes "inside", commas, and\na newline',
    "NA",
]


def _round_trip_rows() -> list[dict]:
    return [
        {"id": f"00{i}", "prompt": p, "seed": MAX - i, "caption_src": f"src-{i}", "score": i + 0.25}
        for i, p in enumerate(PROMPTS)
    ]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl", "csv.gz"])
def test_round_trip_unicode_and_passthrough(tmp_path, fmt):
    rows = _round_trip_rows()
    path = tmp_path / f"m.{fmt}"
    if fmt == "parquet":
        columns = {name: [r[name] for r in rows] for name in rows[0]}
        table = pa.table({**columns, "seed": pa.array(columns["seed"], pa.uint64())})
        pq.write_table(table, path)
    elif fmt == "csv":
        write_csv(path, rows)
    elif fmt == "csv.gz":
        write_csv(tmp_path / "plain.csv", rows)
        path.write_bytes(gzip.compress((tmp_path / "plain.csv").read_bytes()))
    else:
        write_jsonl(path, rows)
    manifest = load(str(path))
    table = manifest.table
    assert table.column_names == [*VALIDATED_COLUMNS, "caption_src", "score"]
    assert manifest.passthrough == ("caption_src", "score")
    assert table["prompt"].to_pylist() == PROMPTS
    assert table["seed"].to_pylist() == [MAX - i for i in range(len(PROMPTS))]
    assert table["id"].to_pylist() == ["000", "001", "002", "003"]  # leading zeros kept
    assert table.schema.field("caption_src").type == pa.string()
    assert table.schema.field("score").type == pa.float64()
    assert table["caption_src"].to_pylist() == [r["caption_src"] for r in rows]
    assert table["score"].to_pylist() == [r["score"] for r in rows]


def test_normalised_columns_and_defaults():
    table = pa.table(
        {
            "prompt": ["a", "b"],
            "seed": pa.array(["7", "8"]),
            "model": [None, "null"],
            "height": pa.array([None, 32.0]),
            "tags": pa.array([["x"], []]),  # any Arrow type passes through
        }
    )
    manifest = validate(table, default_model="tiny")
    out = manifest.table
    assert out.column_names == [*VALIDATED_COLUMNS, "tags"]
    assert out["row"].to_pylist() == [0, 1]
    assert out["id"].to_pylist() == [None, None]
    assert out["model"].to_pylist() == ["tiny", "null"]
    assert out["negative_prompt"].to_pylist() == ["", ""]
    assert out["height"].to_pylist() == [64, 32]
    assert out["num_frames"].to_pylist() == [9, 9]
    assert out["fps"].to_pylist() == [8.0, 8.0]
    assert [out.schema.field(c).type for c in ("height", "fps", "seed")] == [
        pa.int64(),
        pa.float64(),
        pa.uint64(),
    ]
    assert out.schema.field("tags").type == table.schema.field("tags").type
    assert out["tags"].to_pylist() == [["x"], []]


def test_empty_manifest_is_valid(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("id,prompt,seed\n")
    manifest = load(str(path))
    assert isinstance(manifest, ValidatedManifest)
    assert manifest.table.num_rows == 0 and manifest.table.column_names == list(VALIDATED_COLUMNS)


def test_memory_url():
    fs = fsspec.filesystem("memory")
    fs.pipe("/promptreel-test/m.jsonl", b'{"prompt": "a", "seed": 18446744073709551615}\n')
    try:
        manifest = load("memory://promptreel-test/m.jsonl")
    finally:
        fs.rm("/promptreel-test", recursive=True)
    assert manifest.table["seed"].to_pylist() == [MAX]


def test_jsonl_bad_lines_named(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"prompt": "a", "seed": 1}\n\n{"prompt": oops}\n[1, 2]\n')
    with pytest.raises(ManifestError) as info:
        read_manifest(str(path))
    assert [p.field for p in info.value.problems] == ["line 3", "line 4"]
    assert "invalid JSON" in str(info.value) and "expected a JSON object" in str(info.value)


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_manifest(str(tmp_path / "missing.parquet"))
    (tmp_path / "m.xlsx").write_text("x")
    with pytest.raises(ConfigError, match=r"unsupported .*\.parquet.*\.csv.*\.jsonl"):
        read_manifest(str(tmp_path / "m.xlsx"))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ConfigError, match="cannot read"):
        read_manifest(str(tmp_path / "bad.parquet"))
    (tmp_path / "bad.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read"):
        read_manifest(str(tmp_path / "bad.jsonl"))


def test_missing_seed_column_from_file(tmp_path):
    path = write_csv(tmp_path / "m.csv", [{"prompt": "a"}])
    with pytest.raises(ManifestError, match="column 'seed' is required") as info:
        load(path)
    assert info.value.problems[0].row is None


def test_absurd_sizes_fail_validation_not_the_gpu():
    table = pa.table(
        {
            "id": ["typo", "frames", "steps"],
            "prompt": ["p"] * 3,
            "seed": [1, 2, 3],
            "height": [48000, None, None],
            "num_frames": [None, 100001, None],
            "num_inference_steps": [None, None, 10**12],
        }
    )
    text, problems = problems_of(table)
    assert "row 0 (id 'typo'): height: expected a positive integer up to 8192" in text
    assert "row 1 (id 'frames'): num_frames: expected a positive integer up to 4097" in text
    assert "row 2 (id 'steps'): num_inference_steps" in text


def test_jsonl_lone_surrogate_is_reported_by_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"prompt": "fine", "seed": 1}\n{"prompt": "bad \\ud800 half", "seed": 2}\n')
    with pytest.raises(ManifestError) as info:
        read_manifest(str(path))
    assert "line 2: prompt: invalid unicode (a lone surrogate escape)" in str(info.value)
