"""A family's shape rules: what validate refuses before any GPU time, naming the row, the
field and the nearest valid values (diffusers would round, floor, crash or render NaN)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """num_frames = frame_step * k + 1, from min_frames up to max_frames; sides multiples of
    side_multiple, from min_side up to max_side; exactly (height, width) = fixed_size where
    a checkpoint renders one size only. Each limit carries why (shown in the error)."""

    frame_step: int
    side_multiple: int
    max_frames: int | None = None
    max_frames_why: str = ""
    fixed_size: tuple[int, int] | None = None
    fixed_size_why: str = ""
    min_frames: int = 1
    min_frames_why: str = ""
    min_side: int = 1
    max_side: int | None = None
    side_why: str = ""  # of min_side and max_side

    def rules_text(self) -> str:
        frames = f"frames {self.frame_step}k+1" if self.frame_step > 1 else "any frame count"
        if self.min_frames > 1:
            frames += f" from {self.min_frames}"
        if self.max_frames:
            frames += f" up to {self.max_frames}"
        if self.fixed_size:
            frames += ", size exactly {}x{}".format(*self.fixed_size)
        sides = f"sides multiple of {self.side_multiple}"
        if self.min_side > 1:
            sides += f" from {self.min_side}"
        if self.max_side:
            sides += f" up to {self.max_side}"
        return f"{frames}, {sides}"


def shape_problems(name: str, shape: Shape, height: int, width: int, num_frames: int):
    """(field, expectation) for each value a `name` model cannot take as given."""
    problems = []
    if shape.fixed_size and (int(height), int(width)) != shape.fixed_size:
        fixed_h, fixed_w = shape.fixed_size
        problems.append(
            (
                "height" if int(height) != fixed_h else "width",
                f"exactly {fixed_h}x{fixed_w} (height x width) for this {name} checkpoint "
                f"({shape.fixed_size_why}), got {int(height)}x{int(width)}",
            )
        )
    m = shape.side_multiple
    why = f" ({shape.side_why})" if shape.side_why else ""
    for label, side in (("height", int(height)), ("width", int(width))):
        if side % m:
            nearest = _nearest(side, m, 0, shape.max_side, shape.min_side)
            problems.append(
                (label, f"a multiple of {m} for {name} models (nearest: {nearest}), got {side}")
            )
        elif side < shape.min_side:
            problems.append(
                (label, f"at least {shape.min_side} for {name} models{why}, got {side}")
            )
        elif shape.max_side and side > shape.max_side:
            problems.append((label, f"at most {shape.max_side} for {name} models{why}, got {side}"))
    step, frames = shape.frame_step, int(num_frames)
    if (frames - 1) % step:
        nearest = _nearest(frames, step, 1, shape.max_frames, shape.min_frames)
        problems.append(
            ("num_frames", f"{step}k+1 frames for {name} models (nearest: {nearest}), got {frames}")
        )
    elif frames < shape.min_frames:
        why = f"; {shape.min_frames_why}" if shape.min_frames_why else ""
        problems.append(
            (
                "num_frames",
                f"at least {shape.min_frames} frames for {name} models{why}, got {frames}",
            )
        )
    elif shape.max_frames and frames > shape.max_frames:
        why = f"; {shape.max_frames_why}" if shape.max_frames_why else ""
        problems.append(
            (
                "num_frames",
                f"at most {shape.max_frames} frames for {name} models{why}, got {frames}",
            )
        )
    return problems


def _nearest(value: int, step: int, offset: int, upper: int | None = None, lower: int = 1) -> str:
    """The valid values (step*k + offset, within [lower, upper]) on either side of `value`."""
    below = (value - offset) // step * step + offset
    candidates = [
        v for v in (below, below + step) if v >= max(1, lower) and (upper is None or v <= upper)
    ]
    return " or ".join(str(v) for v in candidates) or str(max(step + offset, lower))
