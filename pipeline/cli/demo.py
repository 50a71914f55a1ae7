"""The demo manifest: a few prompts at two shapes for the embedded tiny model."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DEMO_ROWS = [
    {"id": "rat-forest", "prompt": "anime, cute rat running in a forest", "seed": 3048053658270753},
    {"id": "rat-forest-2", "prompt": "anime, cute rat running in a forest", "seed": 7},
    {"id": "lighthouse", "prompt": "a lighthouse in a storm, cinematic", "seed": 42},
    {"id": "koi", "prompt": "koi fish in a pond, top view", "seed": 2**64 - 1},
    {"id": "city", "prompt": "timelapse of a city at night, neon", "seed": 1234},
    {"id": "tea", "prompt": "steam rising from a cup of tea ☕", "seed": 99},
    {"id": "fox-wide", "prompt": "a fox in the snow", "seed": 5, "width": 96, "num_frames": 13},
    {
        "id": "waves-wide",
        "prompt": "waves on a beach at sunset",
        "seed": 6,
        "width": 96,
        "num_frames": 13,
    },
]


def demo_table() -> pa.Table:
    rows = [{"width": None, "num_frames": None, **row} for row in DEMO_ROWS]
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("prompt", pa.string()),
            ("seed", pa.uint64()),
            ("width", pa.int64()),
            ("num_frames", pa.int64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def demo_manifest_path() -> Path:
    """manifests/demo.parquet in the repo; written there from DEMO_ROWS if missing."""
    path = Path(__file__).resolve().parent.parent / "manifests" / "demo.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(demo_table(), path)
    return path


if __name__ == "__main__":
    print(demo_manifest_path())
