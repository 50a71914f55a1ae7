"""Model families: the shape rules and default parameters of each kind of video pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)  # families are singletons: hashed by identity
class Family:
    name: str
    pipeline_class: str  # diffusers class name in model_index.json
    frame_step: int  # num_frames must be frame_step * k + 1
    side_multiple: int  # height and width must be multiples of this
    defaults: dict = field(default_factory=dict)

    def shape_problems(self, height: int, width: int, num_frames: int) -> list[tuple[str, str]]:
        """(field, expectation) for each shape parameter this family cannot take."""
        problems = []
        for name, side in (("height", height), ("width", width)):
            if side % self.side_multiple:
                problems.append(
                    (name, f"a multiple of {self.side_multiple} for {self.name} models, got {side}")
                )
        if (num_frames - 1) % self.frame_step:
            problems.append(
                (
                    "num_frames",
                    f"{self.frame_step}k+1 frames for {self.name} models "
                    f"(e.g. {self.frame_step + 1}, {2 * self.frame_step + 1}), got {num_frames}",
                )
            )
        return problems


def _defaults(height, width, num_frames, fps, steps, guidance) -> dict:
    return {
        "height": height,
        "width": width,
        "num_frames": num_frames,
        "fps": fps,
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "negative_prompt": "",
    }


FAMILIES = {
    f.name: f
    for f in (
        Family("wan", "WanPipeline", 4, 16, _defaults(480, 832, 81, 16, 50, 5.0)),
        Family("ltx", "LTXPipeline", 8, 32, _defaults(512, 704, 121, 24, 50, 3.0)),
        Family("cogvideox", "CogVideoXPipeline", 8, 16, _defaults(480, 720, 49, 8, 50, 6.0)),
        Family("hunyuan", "HunyuanVideoPipeline", 4, 16, _defaults(720, 1280, 129, 24, 50, 6.0)),
        # The embedded tiny model is a Wan pipeline with laptop-sized defaults.
        Family("tiny", "WanPipeline", 4, 16, _defaults(64, 64, 9, 8, 4, 5.0)),
        # Benchmarking aid: cheap deterministic frames, no diffusion (see models/null.py).
        Family("null", "", 1, 2, _defaults(64, 64, 9, 8, 1, 1.0)),
    )
}

# Hub ids carry no model_index.json we can read offline: recognise the family by name.
_HUB_NAME_HINTS = (
    ("hunyuanvideo", "hunyuan"),
    ("cogvideox", "cogvideox"),
    ("ltx", "ltx"),
    ("wan", "wan"),
)


def family_for_class(pipeline_class: str) -> Family | None:
    for family in FAMILIES.values():
        if family.pipeline_class == pipeline_class and family.name != "tiny":
            return family
    return None


def family_for_hub_id(hub_id: str) -> Family | None:
    lowered = hub_id.lower()
    for hint, name in _HUB_NAME_HINTS:
        if hint in lowered:
            return FAMILIES[name]
    return None
