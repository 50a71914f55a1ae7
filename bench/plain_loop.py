"""The plain loop a user would write instead of promptreel (baseline for job_vs_loop).

    python -m bench.plain_loop MANIFEST.parquet --out DIR [--batch-size 4 --threads 2]

from_pretrained the tiny model, loop over the manifest in manifest order in batches of
`--batch-size` with one CPU generator per sample, frames to uint8 as diffusers does,
and encode each clip to DIR/<id>.mp4 with ffmpeg-python, one after the other.

The same x264 settings as promptreel's defaults (crf 18, preset medium, one encoder
thread) so both sides do the same encoding work per clip. A short last batch is padded
with copies of its last item, as promptreel pads, so frames_sha256 compare 1:1.
Writes DIR/_loop.json: per-id frames_sha256 and a time breakdown.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time

T0 = time.perf_counter()

import ffmpeg  # noqa: E402
import imageio_ffmpeg  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402
from diffusers import DiffusionPipeline  # noqa: E402

from pipeline.models.tiny import ensure_tiny_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    imported = time.perf_counter()

    torch.set_num_threads(args.threads)
    pipe = DiffusionPipeline.from_pretrained(ensure_tiny_model())
    pipe.set_progress_bar_config(disable=True)
    loaded = time.perf_counter()

    rows = pq.read_table(args.manifest).to_pylist()
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    hashes: dict[str, str] = {}
    render_s = encode_s = 0.0
    for start in range(0, len(rows), args.batch_size):
        batch = rows[start : start + args.batch_size]
        padded = batch + [batch[-1]] * (args.batch_size - len(batch))
        first = batch[0]
        t = time.perf_counter()
        frames = pipe(
            prompt=[r["prompt"] for r in padded],
            negative_prompt=[r["negative_prompt"] for r in padded],
            height=first["height"],
            width=first["width"],
            num_frames=first["num_frames"],
            num_inference_steps=first["num_inference_steps"],
            guidance_scale=first["guidance_scale"],
            generator=[torch.Generator("cpu").manual_seed(r["seed"]) for r in padded],
            output_type="np",
        ).frames
        t2 = time.perf_counter()
        render_s += t2 - t
        for row, clip in zip(batch, frames):
            clip = np.round(np.clip(clip, 0, 1) * 255).astype(np.uint8)
            hashes[row["id"]] = hashlib.sha256(clip.tobytes()).hexdigest()
            count, height, width, _ = clip.shape
            (
                ffmpeg.input(
                    "pipe:",
                    format="rawvideo",
                    pix_fmt="rgb24",
                    s=f"{width}x{height}",
                    framerate=row["fps"],
                )
                .output(
                    os.path.join(args.out, f"{row['id']}.mp4"),
                    vcodec="libx264",
                    pix_fmt="yuv420p",
                    crf=18,
                    preset="medium",
                    threads=1,
                )
                .overwrite_output()
                .run(cmd=exe, input=clip.tobytes(), quiet=True)
            )
        encode_s += time.perf_counter() - t2
    done = time.perf_counter()
    report = {
        "items": len(rows),
        "import_s": imported - T0,
        "load_s": loaded - imported,
        "render_s": render_s,
        "encode_s": encode_s,
        "loop_s": done - loaded,
        "frames_sha256": hashes,
    }
    with open(os.path.join(args.out, "_loop.json"), "w") as handle:
        json.dump(report, handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
