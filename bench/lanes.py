"""Speed lanes on the tiny families: seconds per item and what each lane does to pixels.

    python -m bench.lanes [--steps 12] [--families tiny,wan2.1,...] [--device cuda
                          --dtype bfloat16] [--json PATH]

For every text-to-video tiny family (random weights, tests/support, cached) and every lane
(pipeline/models/lanes.py) two requests are rendered at batch 1 by promptreel's Renderer,
the code a render actor runs (no Ray, no encode), each lane on a freshly loaded pipeline.
Every lane is tried on every family, whatever the family registry says, so the table shows
what really happens: `error` (the lane cannot apply), `no effect` (pixels equal the exact
lane's: nothing was hooked), or the cost and the pixel change. Per lane: seconds per item
(median of the requests, after one warm-up render), speed vs the exact lane, the share of
uint8 values that moved, the largest move, and PSNR vs the exact lane. Tiny models are
dominated by per-step overheads, so speed here says little about a 14B model on a GPU;
the pixel columns say which lanes are exact math and which approximate.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TEXT_FAMILIES = (
    *("tiny", "wan2.1", "wan2.2-a14b", "wan2.2-ti2v", "ltx", "cogvideox"),
    *("hunyuan", "mochi", "animatediff"),
)
CACHES = ("first-block:0.05", "taylorseer:3", "pab:2")
QUANTIZED = ("int8wo", "float8wo")
# Exact-math backends tried per device (CUDA: the kernels torch itself ships).
BACKENDS = {
    "cpu": ("_native_math", "_native_flash"),
    "cuda": ("_native_math", "_native_flash", "_native_efficient", "_native_cudnn"),
}


def lanes_for(device: str) -> dict:
    lanes = {"exact": {}}
    lanes |= {f"attention {b}": {"attention_backend": b} for b in BACKENDS[device]}
    lanes |= {f"cache {c}": {"cache": c} for c in CACHES}
    return lanes | {f"quantize {q}": {"quantize": q} for q in QUANTIZED}


def reset_attention() -> None:
    """set_attention_backend also sets diffusers' process-wide default: undo it between
    lanes (a render actor runs one lane for its whole life, so it never needs this)."""
    from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

    _AttentionBackendRegistry.set_active_backend(AttentionBackendName.NATIVE)


def items_for(name: str, steps: int):
    from bench.gpu.tiny_families import FAMILIES, checkpoint
    from pipeline.plan.batches import Item
    from pipeline.plan.manifest import validate
    from pipeline.plan.planner import make_plan
    from pipeline.schema import ITEM_FIELDS

    height, width, frames, guidance, params, _ = FAMILIES[name]
    rows = [
        dict(
            prompt=f"{name}: a red fox in the snow, take {seed}",
            seed=seed,
            model=checkpoint(name),
            height=height,
            width=width,
            num_frames=frames,
            num_inference_steps=steps,
            guidance_scale=guidance,
            **params,
        )
        for seed in (11, 12)
    ]
    import pyarrow as pa

    plan = make_plan(validate(pa.Table.from_pylist(rows)), batch_size=1)
    return [Item.from_record(r) for r in plan.items.select(ITEM_FIELDS).to_pylist()]


def render_lane(items, lane: dict, **where) -> tuple[list[np.ndarray] | None, float | str]:
    from pipeline.actor.renderer import Renderer
    from pipeline.config import RenderSettings
    from pipeline.plan.batches import Batch

    reset_attention()
    model = items[0].model
    try:
        renderer = Renderer(model, RenderSettings(model=model, batch_size=1, **where, **lane))
        renderer.render(Batch((items[0],), 1))  # warm-up: first-call allocations
        frames, seconds = [], []
        for item in items:
            started = time.perf_counter()
            out = renderer.render(Batch((item,), 1))[0]
            seconds.append(time.perf_counter() - started)
            if not isinstance(out, np.ndarray):
                return None, f"error: {str(out)[:120]}"
            frames.append(out)
    except Exception as exc:  # noqa: BLE001 - the table reports what a lane does
        return None, f"error: {type(exc).__name__}: {str(exc)[:120]}"
    return frames, statistics.median(seconds)


def compare(exact: list[np.ndarray], other: list[np.ndarray]) -> dict:
    a = np.stack(exact).astype(np.float64)
    b = np.stack(other).astype(np.float64)
    moved = int((a != b).sum())
    mse = float(((a - b) ** 2).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
    return dict(
        moved_share=moved / a.size, max_move=int(np.abs(a - b).max()), psnr_db=round(psnr, 1)
    )


def run(families, steps: int, device: str = "cpu", dtype: str = "float32") -> list[dict]:
    import torch

    torch.set_num_threads(2)
    rows = []
    where = dict(device=device, dtype=dtype)
    for name in families:
        items = items_for(name, steps)
        exact, exact_s = render_lane(items, {}, **where)
        for lane, settings in lanes_for(device).items():
            if lane == "exact":
                frames, seconds = exact, exact_s
            else:
                frames, seconds = render_lane(items, settings, **where)
            row = dict(family=name, lane=lane)
            if frames is None or exact is None:
                row["result"] = seconds if frames is None else "exact lane failed"
            else:
                row |= dict(s_per_item=round(seconds, 4), speed=round(exact_s / seconds, 2))
                row |= compare(exact, frames)
                no_effect = row["moved_share"] == 0 and lane.startswith(("cache", "quantize"))
                row["result"] = "no effect" if no_effect else "ok"
            rows.append(row)
            print(_line(row), flush=True)
    reset_attention()
    return rows


def _line(row: dict) -> str:
    if "s_per_item" not in row:
        return f"{row['family']:13} {row['lane']:25} {row['result']}"
    psnr = "exact" if row["psnr_db"] == math.inf else f"{row['psnr_db']:.1f} dB"
    return (
        f"{row['family']:13} {row['lane']:25} {row['s_per_item']:7.3f} s/item "
        f"x{row['speed']:.2f}  moved {100 * row['moved_share']:5.1f}%  "
        f"max {row['max_move']:3d}  {psnr}  {row['result']}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="denoising steps per render")
    parser.add_argument("--families", default=",".join(TEXT_FAMILIES))
    parser.add_argument("--device", default="cpu", choices=sorted(BACKENDS))
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = run(args.families.split(","), args.steps, args.device, args.dtype)
    if args.json:
        safe = [{k: (None if v == math.inf else v) for k, v in r.items()} for r in rows]
        meta = dict(steps=args.steps, device=args.device, dtype=args.dtype)
        args.json.write_text(json.dumps(dict(**meta, rows=safe), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
