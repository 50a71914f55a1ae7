"""A synthetic run dir for report tests: a catalog of N rows (hostile prompts, failures,
QC flags), real webp thumbnails for the ok rows that the first pages show, and
report.html written by the real write_report. No Ray, no model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.outputs.thumbnail import make_thumbnail
from pipeline.report import write_report
from pipeline.rundir.layout import RunDir

HOSTILE = (
    "<script>alert('pwned')</script>",
    "\"quoted\" & 'single' <b>bold?</b>",
    "nul\x00 bell\x07 escape\x1b end",
    "\u202eoverride rtl תל אביב",
    "</script><img src=x onerror=alert(1)>",
    "an anime rat running in a forest 🐀",
)
ERRORS = (
    "EncodeError: ffmpeg failed encoding 9 frames",
    "quarantined after 3 attempts: ActorDiedError: the actor died",
    "storage error: injected storage fault",
    "model output contains NaN or inf (12 values, 0.1%)",
)


def make_run_dir(root: Path, rows: int, thumbs_for: int = 300) -> tuple[RunDir, pa.Table]:
    """Every 7th row failed, every 11th flagged, every 13th pending; thumbnails for the ok
    rows among the first `thumbs_for` (a page shows 120 cards)."""
    run = RunDir(str(root))
    index = np.arange(rows)
    status = np.where(index % 7 == 3, "failed", np.where(index % 13 == 5, "pending", "ok"))
    keys = [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(rows)]
    flagged = (index % 11 == 4) & (status != "pending")
    stamps = [f"2026-12-01T10:{(i * 60 // rows) % 60:02d}:{i % 60:02d}.000+00:00" for i in index]
    catalog = pa.table(
        {
            "id": [f"row-{i}" if i % 5 else f"{HOSTILE[i % len(HOSTILE)]}-{i}" for i in index],
            "key": keys,
            "prompt": [f"{HOSTILE[i % len(HOSTILE)]} number {i}" for i in index],
            "seed": pa.array([2**64 - 1 - int(i) for i in index], pa.uint64()),
            "status": status,
            "error": [
                ERRORS[i % len(ERRORS)] if s == "failed" else None for i, s in enumerate(status)
            ],
            "finished_at": [None if s == "pending" else t for s, t in zip(status, stamps)],
            "qc_luma_mean": np.where(flagged, 0.0, 120.0),
            "qc_luma_std": np.where(flagged, 0.0, 12.5),
            "qc_motion": np.where(flagged, 0.0, 13.6),
            "qc_flicker": np.where(flagged, 0.0, 4.5),
            "qc_flags": [["black", "frozen"] if f else [] for f in flagged],
        }
    )
    frames = np.random.default_rng(0).integers(0, 256, (9, 64, 64, 3), dtype=np.uint8)
    thumbnail = make_thumbnail(frames, 8)
    for i in range(min(rows, thumbs_for)):
        if status[i] == "ok":
            run.write(run.thumb_path(keys[i]), thumbnail)
    run.write(run.job_json, json.dumps({"model": "dir:0123456789abcdef"}).encode())
    counts = {name: int((status == name).sum()) for name in ("ok", "failed", "pending")}
    context = {
        "counts": counts,
        "manifest": "s3://bucket/<prompts>.parquet",
        "model": "tiny",
        "render": {"batch_size": 4},
        "encode": {"format": "mp4"},
        "qc": "flag",
        "versions": {"python": "3.11"},
    }
    write_report(run, catalog, context)
    return run, catalog
