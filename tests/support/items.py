"""Items built by hand, for tests below the plan."""

from __future__ import annotations

from pipeline.plan.batches import Item


def make_item(prompt, seed, key=None, **params):
    fields = dict(
        negative_prompt="",
        model="tiny",
        height=64,
        width=64,
        num_frames=9,
        fps=8.0,
        num_inference_steps=4,
        guidance_scale=5.0,
    )
    fields.update(params)
    return Item(key or f"{prompt}-{seed}", prompt, fields.pop("negative_prompt"), seed, **fields)
