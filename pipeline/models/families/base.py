"""The one interface every model family adapter fills in: data plus a few small functions.

An adapter answers what the rest of promptreel asks about a kind of pipeline, so no code
outside `pipeline/models/families/` branches on a family name:

- which diffusers pipeline classes it accepts, and which variant a checkpoint is
  (`matches`, read from the checkpoint's configs);
- shape rules and limits: validate refuses every row diffusers would silently round or
  floor, naming the row, the field and the nearest valid values (`shape_problems`);
- defaults as the model card recommends (size, frames, fps, steps, guidance, negative);
- how to encode ONE text for the embedding cache with exactly the settings `__call__`
  uses, as a dict of call arguments (`encode_text`); negatives get `negative_` in front;
- family-specific per-row parameters (`params`): each a manifest column, validated,
  part of the item key and the catalog, and a keyword of the pipeline's `__call__`;
- whether a batch larger than one is pixel-safe, and the recommended batch size;
- which media inputs (image, last_image) a row may or must give;
- which speed lanes (attention backend, step caches) it takes: `lanes`.

Adapters never import torch or diffusers at module level: validate and plan run without.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models.families.shape import Shape, shape_problems

# The render parameters every family has; `defaults` must give each.
DEFAULT_FIELDS = (
    *("height", "width", "num_frames", "fps", "num_inference_steps", "guidance_scale"),
    "negative_prompt",
)
NEGATIVE_PREFIX = "negative_"  # prompt_embeds -> negative_prompt_embeds, and so on
# Speed lanes (pipeline/models/lanes.py): the attention backend, then the step caches.
ATTENTION_LANE = "attention"
DIT_LANES = (ATTENTION_LANE, "first-block", "taylorseer", "pab", "quantize")
# Image-to-video pipelines condition a whole call on one image: media rows render alone.
ONE_IMAGE_PER_CALL = "the pipeline takes one image per call: each media row renders alone"
ONE_VIDEO_PER_CALL = "the pipeline takes one video per call: each video row renders alone"


@dataclass(frozen=True)
class Param:
    """A family-specific per-row parameter: a manifest column named like the `__call__`
    keyword it becomes. The same name in two families must have the same `kind`."""

    name: str
    default: float
    expected: str  # what a valid value is, for error messages: "a finite number >= 0"
    ok: Callable[[np.ndarray], np.ndarray]  # vectorised: float64 values -> bool mask
    kind: str = "float"  # "float" | "int"
    help: str = ""
    # Only rows that give media take it (a condition's frame_index, ...): null, so not in
    # the key, for the family's text rows, whose keys it must not move.
    with_media_only: bool = False


def finite_at_least(low: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: np.isfinite(v) & (v >= low)


def above_zero_up_to_one(v: np.ndarray) -> np.ndarray:
    return np.isfinite(v) & (v > 0) & (v <= 1)


# Video-to-video: how far the render may move from the source video (diffusers denoises
# the last int(num_inference_steps * strength) steps; validate refuses a row where that is 0).
STRENGTH = Param(
    "strength",
    default=0.8,
    expected="a number above 0, at most 1",
    ok=above_zero_up_to_one,
    help="how far from the source video: 1 renders anew, lower keeps more of it",
)
# What every video-to-video family shares: strength, one video per call, and the clip as
# the video's first num_frames frames, which the call does not take.
VIDEO_TO_VIDEO = dict(
    params=(STRENGTH,),
    batch_pixel_safe=False,
    batch_size_why=ONE_VIDEO_PER_CALL,
    media_inputs=("video",),
    media_required=("video",),
    frames_from_video=True,
    call_num_frames=False,
)


def in_closed_range(low: float, high: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: np.isfinite(v) & (v >= low) & (v <= high)


@dataclass(frozen=True)
class Checkpoint:
    """What detection may read: model_index.json, and component configs when on disk."""

    index: dict
    root: Path | None = None

    @property
    def pipeline_class(self) -> str:
        return self.index.get("_class_name", "")

    def config(self, component: str) -> dict:
        path = None if self.root is None else self.root / component / "config.json"
        if path is None or not path.is_file():
            return {}
        return json.loads(path.read_text())

    def has(self, component: str) -> bool:
        """True when model_index.json names a real (non-null) component."""
        value = self.index.get(component)
        return isinstance(value, list) and value[0] is not None


def always(_checkpoint: Checkpoint) -> bool:
    return True


def guidance_above_one(item) -> bool:
    """Classifier-free guidance, and so a negative embedding, only above 1 (diffusers)."""
    return item.guidance_scale > 1.0


@dataclass(frozen=True, eq=False)  # families are singletons: hashed by identity
class Family:
    name: str  # registry name, shown to users
    title: str  # e.g. "Wan 2.1 text-to-video"
    pipeline_classes: tuple[str, ...]  # diffusers classes (model_index.json _class_name)
    shape: Shape
    defaults: dict  # DEFAULT_FIELDS, as the model card recommends
    # One text -> {call argument: tensor with a leading batch dim of 1}; None: no cache.
    encode_text: Callable[[Any, str], dict] | None = None
    params: tuple[Param, ...] = ()
    needs_negative: Callable[[Any], bool] = guidance_above_one  # item -> bool
    batch_pixel_safe: bool = True  # False: pads text to the batch's longest prompt
    default_batch_size: int = 1
    batch_size_why: str = "long video token sequences fill a GPU at batch 1"
    matches: Callable[[Checkpoint], bool] = always  # variant detection, in registry order
    hub_hints: tuple[str, ...] = ()  # lower-case substrings of hub ids naming this family
    dtype: str = "bfloat16"  # recommended on GPU (docs, `promptreel models`)
    notes: str = ""
    # Limits a checkpoint's own configs set (AnimateDiff: the motion module's length);
    # None: `shape` holds for every checkpoint of the family.
    shape_for: Callable[[Checkpoint], Shape] | None = None
    min_inference_steps: int = 1  # below it diffusers fails (Mochi's schedule needs 2)
    # Media a row may give (`__call__` keywords: schema.MEDIA_COLUMNS) and those it must;
    # a family with none refuses a row that gives one.
    media_inputs: tuple[str, ...] = ()
    media_required: tuple[str, ...] = ()
    media_one_of: bool = False  # a row gives at most one of media_inputs (one condition)
    # Speed lanes it takes (models/lanes.py): "attention" and the step caches by name,
    # measured on its tiny checkpoint (bench/lanes.py, tests/unit/test_lanes.py).
    lanes: tuple[str, ...] = ()
    # Its transformer passes an attention mask (padded text): backends that refuse one
    # (flash, sage, ...: lanes.MASKLESS_BACKENDS) are refused before any render.
    attention_masks: bool = False
    # The clip follows a video input frame for frame (video-to-video, VACE's control video):
    # the row renders its videos' first num_frames frames, which they must hold; a row
    # without num_frames takes the most they cover. `call_num_frames` False: `__call__`
    # takes no num_frames (video-to-video: the clip is as long as the frames given).
    frames_from_video: bool = False
    call_num_frames: bool = True
    # The pipeline returns num_frames - this many frames (HunyuanVideo-I2V-33ch decodes its
    # image frame and drops 4): the call asks for the row's num_frames plus this.
    call_frames_extra: int = 0
    # (media column, family): the family whose pipeline renders this family's checkpoints,
    # on the same weights, for rows giving that cell (Wan 2.1 T2V + `video` ->
    # WanVideoToVideoPipeline); a column without one is refused on such rows.
    media_tasks: tuple[tuple[str, str], ...] = ()
    # `__call__` keywords of common fields the pipeline names otherwise (Sana Video:
    # ("num_frames", "frames")); a field mapped to None is not passed at all (HunyuanVideo
    # 1.5 takes its guidance from its guider component, not from the call).
    call_names: tuple[tuple[str, str | None], ...] = ()
    # The keyword taking the row's fps where fps changes pixels (LTX-2: "frame_rate"); None:
    # fps only labels the clip.
    call_fps: str | None = None
    # Fixed keyword arguments of every call (a plain call given these renders the same).
    call_args: tuple[tuple[str, Any], ...] = ()
    # () -> extra keyword arguments of from_pretrained (Cosmos: its guardrail stand-in).
    load_args: Callable[[], dict] | None = None
    # The clip's sound: (pipe, call output) -> one (samples: float32 (channels, n) in
    # [-1, 1], sample rate) per clip of the call; None: the family renders no sound.
    audio_of: Callable[[Any, Any], list] | None = None
    # (pipe) -> None: what the model card does to a loaded pipeline before any call, before
    # the speed lanes (Kandinsky 5's NABLA transformers: the flex attention backend).
    after_load: Callable[[Any], None] | None = None
    # (pipe, the call's first item) -> None: per-call settings a component holds instead of
    # `__call__` (HunyuanVideo 1.5: the row's guidance_scale becomes its guider's); a plain
    # call after the same setting renders the same.
    prepare_call: Callable[[Any, Any], None] | None = None
    # Rules across a row's fields (SkyReels diffusion forcing: its windows vs
    # causal_block_size): ({field: array over the family's rows, the common fields and
    # its params}) -> [(index into those arrays, field, expectation)]; validate refuses each.
    row_problems: Callable[[dict], list[tuple[int, str, str]]] | None = None
    # Packages whose presence changes this family's pixels (Cosmos: its guardrail blurs
    # faces): job.json records their versions (null: not installed) beside torch's, and a
    # resume where they changed is refused like one on other library versions.
    pixel_packages: tuple[str, ...] = ()

    def __post_init__(self):
        missing = [name for name in DEFAULT_FIELDS if name not in self.defaults]
        if missing:
            raise ValueError(f"family {self.name}: defaults lack {missing}")

    def for_checkpoint(self, checkpoint: Checkpoint) -> Family:
        """This family with the limits `checkpoint` itself sets (itself when none)."""
        if self.shape_for is None:
            return self
        shape = self.shape_for(checkpoint)
        return self if shape == self.shape else replace(self, shape=shape)

    @property
    def default_area(self) -> int:
        """Pixels per frame at the model card's size: a media row without a size gets this
        area at its image's aspect ratio (pipeline/media/fit.py derive_size)."""
        return int(self.defaults["height"]) * int(self.defaults["width"])

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def task_family(self, column: str) -> str | None:
        return dict(self.media_tasks).get(column)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def default_of(self, name: str):
        """A default of a common field or of one of this family's params."""
        if name in self.defaults:
            return self.defaults[name]
        return next(p.default for p in self.params if p.name == name)

    def shape_problems(self, height: int, width: int, num_frames: int) -> list[tuple[str, str]]:
        """(field, expectation) for each shape value this family cannot take as given."""
        return shape_problems(self.name, self.shape, height, width, num_frames)

    def call_keywords(self, kwargs: dict) -> dict:
        """The common fields' call arguments under this pipeline's names, plus call_args."""
        names = dict(self.call_names)
        renamed = {names.get(k, k): v for k, v in kwargs.items()}
        renamed.pop(None, None)
        return renamed | dict(self.call_args)

    def rules_text(self) -> str:
        steps = (
            f", at least {self.min_inference_steps} steps" if self.min_inference_steps > 1 else ""
        )
        return self.shape.rules_text() + steps


def model_card_defaults(height, width, num_frames, fps, steps, guidance, negative="") -> dict:
    return {
        "height": height,
        "width": width,
        "num_frames": num_frames,
        "fps": fps,
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "negative_prompt": negative,
    }


def call_default(pipe, name: str):
    """The default `pipe.__call__` gives argument `name`: what the cache must encode with
    (read from the installed diffusers, so a changed default cannot drift apart)."""
    return inspect.signature(type(pipe).__call__).parameters[name].default


def encode_with(method: str = "encode_prompt", **settings) -> Callable[[Any, str], dict]:
    """An encode_text calling `pipe.<method>(prompt=[text], **settings)` without guidance;
    `settings` must be exactly what the pipeline's __call__ passes (max_sequence_length...).
    The result tuple's tensors are named by `names` (a required setting)."""
    names = settings.pop("names")

    def encode_text(pipe, text: str) -> dict:
        outputs = getattr(pipe, method)(
            prompt=[text],
            do_classifier_free_guidance=False,
            device=pipe._execution_device,
            **settings,
        )
        return {n: t for n, t in zip(names, outputs, strict=False) if n is not None}

    return encode_text
