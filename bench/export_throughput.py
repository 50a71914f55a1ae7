"""Export throughput: N synthetic clips (random bytes of --clip-kb each, a real catalog
and run-dir layout) exported to each target, timed in one process, side by side.

    .venv/bin/python -m bench.export_throughput [--clips 2000] [--clip-kb 100] [--workers 8]

The exporters never decode a clip, so random bytes measure the same I/O as real ones.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export.options import ExportOptions
from pipeline.export.run import export_run


def make_run(root: Path, clips: int, clip_kb: int) -> Path:
    run = root / "run"
    rows = []
    for i in range(clips):
        data = os.urandom(clip_kb * 1024)
        key = hashlib.sha256(f"item {i}".encode()).hexdigest()[:32]
        path = run / "clips" / key[:2] / f"{key}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append(
            {
                "id": f"row-{i}",
                "key": key,
                "prompt": f"prompt {i // 5}, a scene with a dot.",
                "seed": i % 5,
                "status": "ok",
                "uri": f"file://{path}",
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    (run / "catalog.parquet").write_bytes(sink.getvalue())
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--clip-kb", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), args.clips, args.clip_kb)
        print(f"{args.clips} clips of {args.clip_kb} KB, --workers {args.workers}")
        for kind in ("webdataset", "hf", "vbench", "files"):
            for attempt in ("first", "again"):
                options = ExportOptions(
                    run=str(run),
                    kind=kind,
                    dest=str(Path(tmp) / kind),
                    workers=args.workers,
                    progress=False,
                )
                started = time.perf_counter()
                result = export_run(options)
                wall = time.perf_counter() - started
                mb = args.clips * args.clip_kb / 1024
                print(
                    f"  {kind:10s} {attempt}: {wall:6.2f}s  {args.clips / wall:7.0f} clips/s  "
                    f"{mb / wall:6.0f} MB/s  ({result.stats.written} units written)"
                )


if __name__ == "__main__":
    main()
