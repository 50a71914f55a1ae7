"""Pixel parity helpers: what promptreel renders for rows, beside a plain diffusers call.

    promptreel_frames(model_dir, rows, batch_size) -> uint8 frames of each row, rendered
        by the Renderer a render actor holds (no Ray), in planned batches of batch_size
    plain_pipe(model_dir) -> the pipeline a user would load (float32, progress bar off)

A family's test calls its pipeline plainly (its own keyword names) and compares with
np.array_equal: the same checkpoint, batch size and threads give the same pixels.
"""

from __future__ import annotations

import numpy as np

from pipeline.actor.renderer import Renderer, to_uint8
from pipeline.config import RenderSettings
from pipeline.models import resolve_model
from pipeline.plan.batches import Batch
from tests.support.items import make_item

THREADS = 1
COMMON = ("height", "width", "num_frames", "fps", "num_inference_steps", "guidance_scale")


def items_of(model_dir: str, rows: list[dict]) -> list:
    """Items for rows of {prompt, seed, negative_prompt?, common fields?, family params}:
    a field a row leaves out takes the family's model-card default, as validate does."""
    family = resolve_model(str(model_dir)).family
    items = []
    for i, row in enumerate(rows):
        fields = {name: row.get(name, family.defaults[name]) for name in COMMON}
        negative = row.get("negative_prompt", family.defaults["negative_prompt"])
        params = tuple(
            sorted(
                (p.name, int(row[p.name]) if p.kind == "int" else float(row[p.name]))
                for p in family.params
                if p.name in row
            )
        )
        items.append(
            make_item(
                row["prompt"],
                row["seed"],
                key=f"row-{i}",
                model=str(model_dir),
                negative_prompt=negative,
                params=params,
                **fields,
            )
        )
    return items


def promptreel_frames(model_dir, rows: list[dict], batch_size: int, threads=THREADS):
    """Each row's uint8 frames as promptreel renders them (rows in batches of batch_size)."""
    settings = RenderSettings(model=str(model_dir), batch_size=batch_size, threads=threads)
    renderer = Renderer(str(model_dir), settings)
    items = items_of(str(model_dir), rows)
    frames = []
    for start in range(0, len(items), batch_size):
        frames += renderer.render(Batch(tuple(items[start : start + batch_size]), batch_size))
    return frames


def plain_pipe(model_dir, threads=THREADS):
    import torch
    from diffusers import DiffusionPipeline

    torch.set_num_threads(threads)
    pipe = DiffusionPipeline.from_pretrained(
        str(model_dir), dtype=torch.float32, use_safetensors=True
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def case_rows(case, prompts, fields: dict, **extra) -> list[dict]:
    """One row per prompt (seeds 40, 41, ...) at the case's shape and step count, with
    `fields`, then `extra` over them."""
    return [
        dict(prompt=p, seed=40 + i, num_inference_steps=case.steps, **case.shape, **fields) | extra
        for i, p in enumerate(prompts)
    ]


def generators(rows: list[dict]):
    import torch

    return [torch.Generator("cpu").manual_seed(row["seed"] % 2**32) for row in rows]


def plain_uint8(frames) -> list[np.ndarray]:
    """A plain call's output_type="np" frames as promptreel stores them."""
    return [to_uint8(np.asarray(clip)) for clip in frames]
