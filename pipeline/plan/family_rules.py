"""A row's family rules, vectorised over model codes: the shape a family renders (frames
step*k+1 and sides multiples of m, each within its limits, a fixed size; families/shape.py)
and its least step count.
Each problem names the row, the field and the nearest valid values (families/base.py)."""

from __future__ import annotations

import numpy as np


def check_shapes(params: dict, codes, families, resolved, problems) -> None:
    """Family rules (frames = step*k+1 within their least and most, sides multiples of m
    within theirs, a fixed size), vectorised over model codes."""

    def per_row(value) -> np.ndarray:
        return np.array([value(f.shape) for f in families], np.int64)[codes]

    side, step = per_row(lambda s: s.side_multiple), per_row(lambda s: s.frame_step)
    most = per_row(lambda s: s.max_frames or 2**62)
    least = per_row(lambda s: s.min_frames)
    small, big = per_row(lambda s: s.min_side), per_row(lambda s: s.max_side or 2**62)
    height, width, frames = params["height"], params["width"], params["num_frames"]
    bad = {"height": height % side, "width": width % side, "num_frames": (frames - 1) % step}
    bad["num_frames"] = bad["num_frames"] + (frames > most) + (frames < least)
    for name, value in (("height", height), ("width", width)):
        bad[name] = bad[name] + (value < small) + (value > big)
    fixed = [f.shape.fixed_size or (0, 0) for f in families]  # (0, 0): any size
    fixed_h, fixed_w = (np.array([size[i] for size in fixed], np.int64)[codes] for i in (0, 1))
    off = (fixed_h > 0) & ((height != fixed_h) | (width != fixed_w))
    bad["height"], bad["width"] = bad["height"] + (off & (height != fixed_h)), bad["width"] + off
    bad = {name: (left != 0) & resolved & ~problems.rows(name) for name, left in bad.items()}
    for row in np.flatnonzero(bad["height"] | bad["width"] | bad["num_frames"]):
        family = families[codes[row]]
        for name, expectation in family.shape_problems(height[row], width[row], frames[row]):
            if bad[name][row]:
                problems.extend([row], name, [f"expected {expectation}"])


def check_steps(steps, codes, families, resolved, problems) -> None:
    """A family's least step count (Mochi's sigma schedule divides by steps // 2)."""
    least = np.array([f.min_inference_steps for f in families], np.int64)[codes]
    bad = (steps < least) & resolved & ~problems.rows("num_inference_steps")
    for row in np.flatnonzero(bad):
        family = families[codes[row]]
        problems.extend(
            [row],
            "num_inference_steps",
            [f"expected at least {least[row]} for {family.name} models, got {steps[row]}"],
        )


def check_row_rules(values: dict, params: dict, codes, families, resolved, problems) -> None:
    """A family's rules across fields (Family.row_problems), on its rows with no problem yet;
    `values`: the family parameter columns, `params`: the common fields."""
    for code, family in enumerate(families):
        rows = np.flatnonzero((codes == code) & resolved & ~problems.rows())
        if family.row_problems is None or not len(rows):
            continue
        fields = {name: np.asarray(column)[rows] for name, column in params.items()}
        for param in family.params:
            fields[param.name] = values[param.name].to_numpy(zero_copy_only=False)[rows]
        for index, name, expectation in family.row_problems(fields):
            problems.extend([rows[index]], name, [f"expected {expectation}"])
