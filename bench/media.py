"""Validate + plan of media rows: 10,000 local images, then images on an S3 server.

    python -m bench.media [--rows 10000] [--s3-rows 1000] [--quick] [--keep]

Writes N distinct JPEGs (small: 256x256; and a second set of large 1920x1080 ones, to show
the driver's memory does not grow with image size), a Parquet manifest of image-to-video
rows (a config-only Wan 2.1 I2V checkpoint: validate reads configs, never weights), then
times `promptreel validate` and `promptreel plan --out RUN` as subprocesses (wall, peak
RSS), and `plan` again on the same run dir (the media hash cache: no image is read).
Then the same with the images in moto_server on 127.0.0.1 (S3 API), `--s3-rows` of them.
Goal (issue 16): 10,000 local images validated and planned in under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import (
    Workdir,
    check_ok,
    header,
    pipeline_cmd,
    run_measured,
    table,
    write_results,
)

SMALL, LARGE = (256, 256), (1920, 1080)
GOAL_S = 60.0


def jpeg(width: int, height: int, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    pixels = np.kron(base, np.ones((8, 8, 1), np.uint8))[:height, :width]  # blocky: compresses
    sink = io.BytesIO()
    Image.fromarray(pixels).save(sink, format="JPEG", quality=90)
    return sink.getvalue()


def i2v_checkpoint(root: Path) -> str:
    """A Wan 2.1 I2V checkpoint's configs (detection reads them; no weights needed)."""
    folder = root / "wan-i2v-configs"
    (folder / "transformer").mkdir(parents=True)
    index = {"_class_name": "WanImageToVideoPipeline", "transformer": ["diffusers", "X"]}
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "transformer" / "config.json").write_text(json.dumps({"image_dim": 1280}))
    return str(folder)


def write_manifest(path: Path, images: list[str], model: str) -> None:
    rows = len(images)
    pq.write_table(
        pa.table(
            {
                "id": [f"m{i:06d}" for i in range(rows)],
                "prompt": [f"the scene in image {i} comes alive" for i in range(rows)],
                "seed": pa.array(np.arange(rows, dtype=np.uint64)),
                "model": [model] * rows,
                "image": images,
                "height": pa.array(np.full(rows, 480)),
                "width": pa.array(np.full(rows, 832)),
            }
        ),
        path,
    )


def write_hash_cache(manifest: Path, run: Path, storage_options: dict | None) -> None:
    """What a render leaves in its run dir: the media hash cache (computed in-process)."""
    from pipeline.config import RunConfig
    from pipeline.driver.job import load_manifest
    from pipeline.plan.media_rows import MediaHashes
    from pipeline.rundir.layout import RunDir

    hashes = MediaHashes()
    load_manifest(RunConfig(str(manifest), str(run), storage_options=storage_options or {}), hashes)
    rundir = RunDir(str(run))
    rundir.write(rundir.media_hashes, hashes.to_json().encode())


def measure(work: Path, label: str, manifest, storage_options: dict | None = None) -> dict:
    """validate; plan (validate + plan, one command); plan of a run dir whose hash cache
    holds every image (a resume: no image is read again)."""
    extra = ("--storage-options", json.dumps(storage_options)) if storage_options else ()
    results = {}
    run = work / f"run-{label}"
    for name, args in (
        ("validate", ("validate", manifest, *extra)),
        ("validate+plan", ("plan", manifest, *extra)),
        ("resume plan (hash cache)", ("plan", manifest, "--out", run, *extra)),
    ):
        if name.startswith("resume"):
            write_hash_cache(manifest, run, storage_options)
        m = run_measured(pipeline_cmd(*args), work / f"{label}-{name.split()[0]}.log")
        check_ok(m, f"{label}: {name}")
        results[name] = {"wall_s": round(m.wall_s, 2), "peak_rss_mb": round(m.peak_rss_mb)}
        print(f"  {label} {name}: {m.wall_s:.1f}s, {m.peak_rss_mb:.0f} MiB", flush=True)
    return results


def local_sets(work: Path, rows: int, model: str) -> dict:
    found = {}
    for label, (width, height), count in (
        ("small", SMALL, rows),
        ("large", LARGE, max(1, rows // 10)),
    ):
        folder = work / label
        folder.mkdir()
        started = time.perf_counter()
        paths = []
        for i in range(count):
            path = folder / f"{i:06d}.jpg"
            path.write_bytes(jpeg(width, height, i))
            paths.append(str(path))
        manifest = work / f"{label}.parquet"
        write_manifest(manifest, paths, model)
        mib = sum(Path(p).stat().st_size for p in paths) / 2**20
        print(f"  {label}: {count} images {width}x{height}, {mib:.0f} MiB", flush=True)
        found[label] = {
            "images": count,
            "size": f"{width}x{height}",
            "mib": round(mib, 1),
            "write_s": round(time.perf_counter() - started, 1),
            **measure(work, label, manifest),
        }
    return found


def s3_set(work: Path, rows: int, model: str) -> dict:
    from types import SimpleNamespace

    from tests.support.s3 import BUCKET, fs_for, moto_server, options

    factory = SimpleNamespace(mktemp=lambda name: Path(work / name).mkdir() or work / name)
    servers = moto_server(factory)
    s3 = next(servers)
    try:
        fs = fs_for(s3)
        images = []
        for i in range(rows):
            url = f"s3://{BUCKET}/images/{i:06d}.jpg"
            fs.pipe_file(url, jpeg(*SMALL, i))
            images.append(url)
        manifest = work / "s3.parquet"
        write_manifest(manifest, images, model)
        size = "x".join(map(str, SMALL))
        return {"images": rows, "size": size, **measure(work, "s3", manifest, options(s3))}
    finally:
        next(servers, None)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--s3-rows", type=int, default=1_000)
    parser.add_argument("--quick", action="store_true", help="1,000 local and 200 S3 images")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    rows, s3_rows = (1_000, 200) if args.quick else (args.rows, args.s3_rows)
    header(f"media rows: validate + plan of {rows:,} local images, {s3_rows:,} on S3")
    with Workdir("media", args.keep) as work:
        model = i2v_checkpoint(work)
        results = {"local": local_sets(work, rows, model), "s3": s3_set(work, s3_rows, model)}
    small = results["local"]["small"]
    total = small["validate+plan"]["wall_s"]
    results["goal"] = {
        "validate+plan_s": round(total, 1),
        "target_s": GOAL_S,
        "met": total < GOAL_S,
    }
    lines = [
        [f"{label} ({r['images']} x {r['size']})", name, v["wall_s"], v["peak_rss_mb"]]
        for label, r in (*results["local"].items(), ("s3", results["s3"]))
        for name, v in r.items()
        if isinstance(v, dict)
    ]
    print(table(["images", "command", "wall s", "peak MiB"], lines))
    print(f"  goal: {rows:,} local images validated + planned in {total:.1f}s (< {GOAL_S:.0f}s)")
    write_results("media", results)
    return results


if __name__ == "__main__":
    main()
