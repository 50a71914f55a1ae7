"""The renderer inside a render actor: a planned batch -> uint8 frames. No Ray here."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from pipeline.actor.adapters import Adapters
from pipeline.actor.faults import Faults
from pipeline.actor.media import MediaFetcher
from pipeline.config import RenderSettings
from pipeline.errors import RenderError
from pipeline.media.source import MediaError
from pipeline.models import resolve_model
from pipeline.models.families.base import NEGATIVE_PREFIX
from pipeline.models.loader import load_pipeline
from pipeline.outputs.audio import Audio
from pipeline.plan.batches import Batch, Item
from pipeline.schema import SEED_SPACE


class EmbeddingCache:
    """LRU of text -> embedding tensor; one encoder pass per distinct text per actor."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: OrderedDict[str, object] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def lookup(self, texts, encode_one):
        """Embeddings for `texts` (a list); encode_one(text) runs once per missing text.

        Each text is encoded alone, so an embedding never depends on which other texts
        missed the cache at the same moment (that depends on an actor's history)."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._entries))
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        for text in missing:
            self._entries[text] = encode_one(text)
        found = []
        for text in texts:
            self._entries.move_to_end(text)
            found.append(self._entries[text])
        while len(self._entries) > max(self.capacity, len(set(texts))):
            self._entries.popitem(last=False)
        return found


class Renderer:
    """Holds one loaded pipeline; renders one planned batch per call."""

    def __init__(
        self,
        model: str,
        settings: RenderSettings,
        faults: Faults | None = None,
        media: MediaFetcher | None = None,
    ):
        self.settings = settings
        self.faults = faults or Faults()
        self.media = media or MediaFetcher()
        self.ref = resolve_model(model)
        self.family = self.ref.family
        self._pin_threads()
        self.pipe = load_pipeline(self.ref, settings)
        self.cache = EmbeddingCache(settings.embedding_cache) if settings.embedding_cache else None
        self.adapters = Adapters(self.pipe, self.media.limits, self.media.storage_options)

    def render(self, batch: Batch) -> list[np.ndarray | RenderError]:
        """uint8 frames (F, H, W, 3), or the item's own fatal error, for each real item of
        the batch (padding discarded). A failure of the whole call raises RenderError."""
        return [c if isinstance(c, RenderError) else c.frames for c in self.render_clips(batch)]

    def render_clips(self, batch: Batch) -> list[Rendered | RenderError]:
        """As `render`, each clip with its sound where the family renders one."""
        items = batch.padded()
        self.faults.before_render(batch.items)
        self._pin_threads()
        if self.ref.kind == "null":
            return [self._null(item) for item in batch.items]
        # Batch-mates would change pixels, or a media row conditions its whole call (a
        # bucket holds media rows or text rows, never both: their family params differ).
        if not self.family.batch_pixel_safe or any(item.media for item in batch.items):
            return [self._render_alone(item) for item in batch.items]
        try:
            frames, sounds = self._diffuse(items)
        except Exception as exc:  # noqa: BLE001 - classified, then re-raised as RenderError
            raise classify_render_error(exc) from exc
        return [self._finished(*clip) for clip in zip(batch.items, frames, sounds)]

    def _pin_threads(self) -> None:
        """Pinned, not inherited: the thread count changes a few uint8 values. Pinned in
        the thread that renders, at each call: torch's count is per OS thread (OpenMP's),
        and an actor runs its calls on a pool of threads (measured: an actor kept from an
        earlier job rendered on a thread still pinned to that job's --threads)."""
        if self.ref.kind != "null":  # the null model needs no torch (seconds of import)
            import torch

            torch.set_num_threads(self.settings.threads)

    def _null(self, item: Item) -> Rendered | RenderError:
        """The null model's uint8 frames (the `nan` fault applies to every model)."""
        frames = self.pipe.frames_for(
            item.prompt, item.seed % SEED_SPACE, item.num_frames, item.height, item.width
        )
        if self.faults.hits("nan", item.prompt):
            return _checked(np.full(frames.shape, np.nan, np.float32))
        return Rendered(frames)

    def _render_alone(self, item: Item) -> Rendered | RenderError:
        """One item in its own call; its media problems are its own error, not the batch's."""
        try:
            media = self.media_inputs(item)
        except MediaError as exc:
            return RenderError(f"{item.media_names()}: {exc}", exc.retriable)
        try:
            frames, sounds = self._diffuse((item,), media)
            return self._finished(item, frames[0], sounds[0])
        except Exception as exc:  # noqa: BLE001 - classified, then re-raised as RenderError
            raise classify_render_error(exc) from exc

    def media_inputs(self, item: Item) -> dict:
        """The item's media as its call takes them (a video-to-video source must hold all the
        frames the row renders; a condition video may be shorter than the clip)."""
        return self.media.inputs(item, exact_frames=self.family.frames_from_video)

    def media_posters(self, item: Item) -> dict:
        """The first picture of each of the item's media inputs, as its call got it."""
        return self.media.posters(item, exact_frames=self.family.frames_from_video)

    def _finished(self, item: Item, frames: np.ndarray, sound) -> Rendered | RenderError:
        """A clip of the call: float frames -> uint8 (sound: (samples, rate) or None)."""
        if self.faults.hits("nan", item.prompt):
            frames = np.full_like(frames, np.nan)
        checked = _checked(frames)
        if isinstance(checked, RenderError) or sound is None:
            return checked
        try:
            return Rendered(checked.frames, Audio.of(*sound))
        except RenderError as exc:
            return exc

    def _diffuse(self, items, media: dict | None = None) -> tuple[np.ndarray, list]:
        """One pipeline call: its float frames, and per item its sound (or None)."""
        import torch

        first = items[0]
        self.adapters.apply(first.lora)  # a batch shares its adapter set (its bucket)
        generators = [torch.Generator("cpu").manual_seed(i.seed % SEED_SPACE) for i in items]
        kwargs = dict(
            height=first.height,
            width=first.width,
            num_frames=first.num_frames + self.family.call_frames_extra,
            num_inference_steps=first.num_inference_steps,
            guidance_scale=first.guidance_scale,
            # One item: its generator itself. LTXImageToVideoPipeline draws decode noise with
            # torch.randn(generator=...), which takes no list (randn_tensor draws the same
            # numbers from [g] as from g, so other families' pixels do not move).
            generator=generators if len(generators) > 1 else generators[0],
            output_type="np",
        )
        if not self.family.call_num_frames:  # the clip is as long as the video given
            del kwargs["num_frames"]
        if self.family.call_fps:  # fps moves pixels (a bucket shares it): the call takes it
            kwargs[self.family.call_fps] = float(first.fps)
        kwargs = self.family.call_keywords(kwargs)
        if self.family.prepare_call:  # settings a component holds (the bucket shares them)
            self.family.prepare_call(self.pipe, first)
        kwargs.update(first.family_args())  # per-row family parameters, shared by the bucket
        kwargs.update(media or {})  # image, last_image, video: fitted to (height, width)
        prompts = [i.prompt for i in items]
        negatives = [i.negative_prompt for i in items]
        if self.cache is None or self.family.encode_text is None:
            kwargs.update(prompt=prompts, negative_prompt=negatives)
        else:
            kwargs.update(self._cached_args(prompts))
            if self.family.needs_negative(first):
                negative = self._cached_args(negatives)
                kwargs.update({NEGATIVE_PREFIX + name: t for name, t in negative.items()})
        with torch.inference_mode():
            output = self.pipe(**kwargs)
        sounds = self.family.audio_of(self.pipe, output) if self.family.audio_of else None
        return output.frames, sounds or [None] * len(items)

    def _cached_args(self, texts) -> dict:
        """The call arguments (prompt_embeds, masks, ...) for a batch of texts, each text's
        tensors encoded alone and concatenated along the batch dimension."""
        import torch

        entries = self.cache.lookup(texts, self._encode_one)
        return {name: torch.cat([e[name] for e in entries]) for name in entries[0]}

    def _encode_one(self, text: str) -> dict:
        import torch

        with torch.inference_mode():
            return self.family.encode_text(self.pipe, text)


@dataclass(frozen=True, eq=False)
class Rendered:
    """One clip as rendered: uint8 frames (F, H, W, 3), and its sound where there is one."""

    frames: np.ndarray
    audio: Audio | None = None


def _checked(frames: np.ndarray) -> Rendered | RenderError:
    """Float frames in [0, 1] -> uint8 as diffusers does. NaN/inf is fatal (its uint8 cast is
    undefined); constant or black output is a clip, judged by QC (pipeline/outputs/qc.py)."""
    bad = frames.size - int(np.isfinite(frames).sum())
    if bad:
        share = f"{bad / frames.size:.1%}"
        return RenderError(f"model output contains NaN or inf ({bad} values, {share})", False)
    return Rendered(to_uint8(frames))


def to_uint8(frames: np.ndarray) -> np.ndarray:
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


def classify_render_error(exc: Exception) -> RenderError:
    """Out-of-memory and device errors may pass on another attempt; bad parameters never."""
    if isinstance(exc, RenderError):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    retriable = isinstance(exc, MemoryError) or any(
        marker in text for marker in ("out of memory", "CUDA error", "OutOfMemoryError")
    )
    return RenderError(text, retriable=retriable)


def warm_imports(model: str) -> None:
    """What an early actor does before it may load weights: the libraries' imports."""
    if resolve_model(model).kind == "null":
        return
    import torch  # noqa: F401
    from diffusers import DiffusionPipeline  # noqa: F401
