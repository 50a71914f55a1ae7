"""The export tests' source manifest: hostile prompts, extreme seeds, shared requests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipeline.cli import main
from tests.conftest import write_manifest

PROMPTS = [
    "A 3D model of a 1800s victorian house.",
    "anime, cute rat running in a forest",
    "東京の夜, café ☕ 👩‍🚀 שלום",
    "<script>alert('x')</script>",
]
SEEDS = [3048053658270753, 2**64 - 1, 0, 41, 2**63]
FAILING = "this prompt fails"
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", pa.string()),
        ("seed", pa.uint64()),
        ("vbench_name", pa.string()),
        ("text", pa.string()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("num_frames", pa.int64()),
        ("num_inference_steps", pa.int64()),
    ]
)
SMALL = {"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 2}  # fast renders


def manifest_rows() -> list[dict]:
    rows = []
    for p, prompt in enumerate(PROMPTS):
        name = "script alert" if "/" in prompt else prompt
        for s, seed in enumerate(SEEDS):
            rows.append({"id": f"p{p}.s{s}", "prompt": prompt, "seed": seed, "vbench_name": name})
    rows += [
        {"id": "cat-a", "prompt": "Cat", "seed": 7, "vbench_name": "Cat"},
        {"id": "cat-b", "prompt": "Cat", "seed": 7, "vbench_name": "Cat"},  # same request
        {"id": "cat-lower", "prompt": "cat", "seed": 7, "vbench_name": "cat"},
        {"id": "broken", "prompt": FAILING, "seed": 1, "vbench_name": FAILING},
    ]
    for row in rows:
        row.update(SMALL, text=f"caption of {row['id']}")
    return rows


def render(tmp: Path, rows: list[dict], *flags: str) -> Path:
    manifest = write_manifest(tmp / "m.parquet", rows, SCHEMA)
    argv = ["render", str(manifest), "--out", str(tmp / "run"), "--no-progress", *flags]
    assert main([*argv, "--inject-fault", f"nan:{FAILING}"]) in (0, 3)
    return tmp / "run"
