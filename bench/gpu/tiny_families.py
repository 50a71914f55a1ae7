"""Every tiny family on a GPU: the manifest, the comparison of two renders, a no-Ray fallback.

    python bench/gpu/tiny_families.py manifest WORK           # -> WORK/families.parquet
    python bench/gpu/tiny_families.py compare RUN_A RUN_B     # pixels of two `render` runs
    python bench/gpu/tiny_families.py direct WORK [--device cuda --dtype bfloat16]

`manifest` builds each tiny checkpoint with the test helpers (tests/support: random weights
from a fixed seed, cached under PROMPTREEL_HOME) and writes one manifest with two rows per
family: the shapes and family parameters the e2e tests use (tests/e2e/test_families.py,
test_video_families.py, test_media_families.py, test_media_rows.py), images made here.
`compare` reads both runs' catalogs (run with --format png: lossless, so the frames are
decoded exactly) and reports, per family, status and whether frames_sha256 is the same in
both runs, else the largest uint8 difference. `direct` is for a machine without Ray or an
ffmpeg: the same rows planned by promptreel and rendered twice by its Renderer (the code a
render actor runs; no Ray, no encoding), each model loaded afresh for the second pass.
Each prints a summary by family; --json PATH writes all of it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # tests.support and pipeline, run from any directory

STEPS, NEGATIVE = 2, "blurry, static"
# name -> (height, width, num_frames, guidance_scale, family parameters, media)
FAMILIES = {
    "tiny": (32, 32, 5, 5.0, {}, ()),
    "wan2.1": (16, 16, 5, 5.0, {}, ()),
    "wan2.2-a14b": (16, 16, 5, 5.0, {"guidance_scale_2": 2.0}, ()),
    "wan2.2-ti2v": (32, 32, 5, 5.0, {}, ()),
    "ltx": (32, 32, 9, 5.0, {"decode_timestep": 0.1}, ()),
    "ltx-condition": (32, 32, 9, 5.0, {}, ()),
    "cogvideox": (16, 16, 9, 5.0, {}, ()),
    "hunyuan": (32, 48, 5, 6.0, {"true_cfg_scale": 2.5}, ()),
    "animatediff": (24, 40, 6, 7.5, {}, ()),
    "mochi": (32, 48, 7, 4.5, {}, ()),
    "wan2.1-i2v": (32, 32, 5, 5.0, {}, ("image",)),
    "wan2.1-flf2v": (32, 32, 5, 5.0, {}, ("image", "last_image")),
    "wan2.2-i2v-a14b": (32, 32, 5, 5.0, {}, ("image", "last_image")),
    "ltx-i2v": (32, 32, 9, 3.0, {"decode_timestep": 0.1}, ("image",)),
    "cogvideox-i2v": (16, 16, 9, 6.0, {}, ("image",)),
    "cogvideox-1.5-i2v": (16, 16, 9, 6.0, {}, ("image",)),
    "hunyuan-i2v": (16, 16, 5, 6.0, {"true_cfg_scale": 2.0}, ("image",)),
}


def checkpoint(name: str) -> str:
    from pipeline.models.tiny import ensure_tiny_model
    from tests.support import checkpoints, video_checkpoints

    if name == "tiny":
        return str(ensure_tiny_model())
    if name in video_checkpoints.BUILDERS:
        return str(video_checkpoints.video_checkpoint_dir(name))
    return str(checkpoints.checkpoint_dir(name))


def write_manifest(work: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from tests.support.media_files import pattern

    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (height, width, frames, guidance, params, media) in FAMILIES.items():
        common = dict(model=checkpoint(name), height=height, width=width, num_frames=frames)
        common |= dict(num_inference_steps=STEPS, guidance_scale=guidance, **params)
        for i, column in enumerate(media):
            path = work / f"{name}-{column}.png"
            Image.fromarray(np.roll(pattern(width, height), 5 * i, axis=1)).save(path)
            common[column] = str(path)
        for seed, negative in ((11, NEGATIVE), (12, "")):
            rows.append(
                dict(
                    id=f"{name}-{seed}",
                    prompt=f"{name}: a red fox, seed {seed}",
                    seed=seed,
                    negative_prompt=negative,
                    **common,
                )
            )
    columns = list(dict.fromkeys(c for row in rows for c in row))
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    pq.write_table(table, work / "families.parquet")
    return work / "families.parquet"


def clip_frames(uri: str) -> np.ndarray:
    """uint8 (F, H, W, 3) of a --format png clip: the PNGs of its zip."""
    from PIL import Image

    from pipeline.outputs import frame_zip

    members = frame_zip.unpack(Path(uri.removeprefix("file://")).read_bytes())
    return np.stack([np.asarray(Image.open(io.BytesIO(members[n]))) for n in sorted(members)])


def family_of(item_id: str) -> str:
    return item_id.rsplit("-", 1)[0]


def summary(pairs: dict, mode: str) -> dict:
    """pairs: id -> (status a, status b, sha a, sha b, max |a - b| or None)."""
    families: dict = {}
    for item_id, (status_a, status_b, sha_a, sha_b, diff) in sorted(pairs.items()):
        fam = families.setdefault(family_of(item_id), dict(ok=True, same_pixels=True, items={}))
        fam["items"][item_id] = dict(
            status=[status_a, status_b], frames_sha256=[sha_a, sha_b], max_abs_diff=diff
        )
        fam["ok"] &= status_a == status_b == "ok"
        fam["same_pixels"] &= sha_a == sha_b and sha_a is not None
    missing = sorted(set(FAMILIES) - set(families))
    return dict(
        mode=mode,
        families=families,
        missing_families=missing,
        all_ok=not missing and all(f["ok"] for f in families.values()),
        all_same_pixels=not missing and all(f["same_pixels"] for f in families.values()),
    )


def compare(run_a: Path, run_b: Path) -> dict:
    import pyarrow.parquet as pq

    a, b = (
        {r["id"]: r for r in pq.read_table(run / "catalog.parquet").to_pylist()}
        for run in (run_a, run_b)
    )
    pairs = {}
    for item_id in sorted(set(a) | set(b)):
        ra, rb = a.get(item_id, {}), b.get(item_id, {})
        diff = None
        if ra.get("uri") and rb.get("uri") and ra["frames_sha256"] != rb["frames_sha256"]:
            fa, fb = clip_frames(ra["uri"]), clip_frames(rb["uri"])
            diff = int(np.abs(fa.astype(int) - fb.astype(int)).max())
        pairs[item_id] = (
            ra.get("status"),
            rb.get("status"),
            ra.get("frames_sha256"),
            rb.get("frames_sha256"),
            diff,
        )
    return summary(pairs, "promptreel render, twice")


def direct(work: Path, device: str, dtype: str) -> dict:
    """Both passes in this process through promptreel's planner and Renderer, batch 1."""
    from pipeline.actor.renderer import Renderer
    from pipeline.config import RenderSettings
    from pipeline.plan.batches import Batch, Item
    from pipeline.plan.manifest import load
    from pipeline.plan.planner import make_plan
    from pipeline.schema import ITEM_FIELDS

    plan = make_plan(load(str(write_manifest(work))), batch_size=1)
    rows = plan.rows.select(["id", "key"]).to_pylist()
    items = {r["key"]: Item.from_record(r) for r in plan.items.select(ITEM_FIELDS).to_pylist()}
    passes = []
    for _ in range(2):
        frames, renderers = {}, {}
        for key, item in items.items():
            if item.model not in renderers:
                settings = RenderSettings(
                    model=item.model, batch_size=1, device=device, dtype=dtype
                )
                renderers[item.model] = Renderer(item.model, settings)
            out = renderers[item.model].render(Batch((item,), 1))[0]
            frames[key] = out if isinstance(out, np.ndarray) else None
        passes.append(frames)
        del renderers
    pairs = {}
    for row in rows:
        fa, fb = (p[row["key"]] for p in passes)
        sha = [None if f is None else hashlib.sha256(f.tobytes()).hexdigest() for f in (fa, fb)]
        status = ["ok" if f is not None else "failed" for f in (fa, fb)]
        both = fa is not None and fb is not None
        diff = int(np.abs(fa.astype(int) - fb.astype(int)).max()) if both else None
        pairs[row["id"]] = (*status, *sha, diff)
    return summary(pairs, f"in-process Renderer, twice (no Ray, no encode), {device} {dtype}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["manifest", "compare", "direct"])
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.command == "manifest":
        print(write_manifest(args.paths[0]))
        return 0
    if args.command == "compare":
        result = compare(*args.paths[:2])
    else:
        result = direct(args.paths[0], args.device, args.dtype)
    print(result["mode"])
    for name, fam in sorted(result["families"].items()):
        diffs = [i["max_abs_diff"] for i in fam["items"].values() if i["max_abs_diff"]]
        print(
            f"  {name:18} ok={fam['ok']} same_pixels={fam['same_pixels']}"
            + (f" max_abs_diff={max(diffs)}" if diffs else "")
        )
    print(
        f"missing: {result['missing_families']} all_ok={result['all_ok']} "
        f"all_same_pixels={result['all_same_pixels']}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["all_ok"] and result["all_same_pixels"] else 1


if __name__ == "__main__":
    sys.exit(main())
