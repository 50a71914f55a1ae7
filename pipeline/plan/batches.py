"""What one pipeline call renders: `Item` (one distinct request) and `Batch` (items in
their planned positions, padded to the batch size). Plain data: the actor side uses them."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass

from pipeline.plan.composition import batch_id
from pipeline.schema import (
    FAMILY_PARAM_COLUMNS,
    ITEM_FIELDS,
    LORA,
    MEDIA_COLUMNS,
    MEDIA_HASH_SUFFIX,
    REFERENCE_IMAGES,
    RESIZE,
)


@dataclass(frozen=True)
class MediaInput:
    """One media cell of a request: the `__call__` keyword it feeds (image, last_image),
    where to fetch it, and the content hash the key was computed from."""

    name: str
    uri: str
    sha256: str


@dataclass(frozen=True)
class Adapter:
    """One LoRA adapter of a request: where to fetch it, its scale, and the content hash
    the key was computed from (pipeline/plan/lora_rows.py)."""

    uri: str
    scale: float
    sha256: str
    expert: str = "transformer"  # or transformer_2: Wan 2.2 A14B's low-noise expert


@dataclass(frozen=True)
class Item:
    """One distinct render request. `seed` is the user's; the generator uses seed % 2**32."""

    key: str
    prompt: str
    negative_prompt: str
    seed: int
    model: str
    height: int
    width: int
    num_frames: int
    fps: float
    num_inference_steps: int
    guidance_scale: float
    # The family's own parameters (guidance_scale_2, decode_timestep, ...) this row sets,
    # as sorted (name, value) pairs: `__call__` keywords, part of the key.
    params: tuple[tuple[str, float], ...] = ()
    # Media inputs this request gives (conditioned families), and how images are fitted
    # to (height, width): pipeline/media/fit.py. None for text-only requests.
    media: tuple[MediaInput, ...] = ()
    resize: str | None = None
    lora: tuple[Adapter, ...] = ()  # in the order given: set_adapters combines them

    def family_args(self) -> dict:
        return dict(self.params)

    def media_names(self) -> str:
        return ", ".join(m.name for m in self.media) or "no media"

    @classmethod
    def from_record(cls, record: dict) -> Item:
        """From a row of ITEM_FIELDS columns: family parameters a row sets become `params`,
        media cells it gives become `media`."""
        special = (*FAMILY_PARAM_COLUMNS, *MEDIA_COLUMNS, RESIZE, LORA, REFERENCE_IMAGES)
        fields = {
            name: record[name]
            for name in ITEM_FIELDS
            if name not in special and not name.endswith(MEDIA_HASH_SUFFIX)
        }
        given = [(n, record[n]) for n in FAMILY_PARAM_COLUMNS if record.get(n) is not None]
        media = tuple(
            MediaInput(name, record[name], record[name + MEDIA_HASH_SUFFIX])
            for name in MEDIA_COLUMNS
            if record.get(name) is not None
        )
        references = json.loads(record.get(REFERENCE_IMAGES) or "[]")
        media += tuple(MediaInput(REFERENCE_IMAGES, r["uri"], r["sha256"]) for r in references)
        lora = tuple(Adapter(**a) for a in json.loads(record.get(LORA) or "[]"))
        resize = record.get(RESIZE)
        return cls(**fields, params=tuple(given), media=media, resize=resize, lora=lora)


# How a batch came to run. PLANNED: its planned composition, first time. RETRY: the same
# composition again for items that failed or were lost (their done mates as padding).
# ISOLATED: one item alone, padded with copies of itself (after a RETRY failed too).
PLANNED, RETRY, ISOLATED = "planned", "retry", "isolated"


@dataclass(frozen=True)
class Batch:
    """Items rendered by one pipeline call, padded to `size` with copies of the last item.

    `items` are real items in their planned positions; only the `wanted` ones (all when
    None) are kept and recorded, the others are rendered as padding so that the wanted
    ones get exactly the pixels of their planned batch. `origin`: for an ISOLATED batch,
    the planned batch its item left.
    """

    items: tuple[Item, ...]
    size: int
    wanted: frozenset[str] | None = None
    stage: str = PLANNED
    origin: Batch | None = None

    @property
    def model(self) -> str:
        return self.items[0].model

    @property
    def kept(self) -> tuple[Item, ...]:
        """The items whose outputs are kept, in position order."""
        if self.wanted is None:
            return self.items
        return tuple(item for item in self.items if item.key in self.wanted)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(item.key for item in self.kept)

    def padded(self) -> tuple[Item, ...]:
        return self.items + (self.items[-1],) * (self.size - len(self.items))

    @property
    def planned(self) -> Batch:
        return self.origin or self

    @functools.cached_property
    def batch_id(self) -> str:
        planned = self.planned
        return batch_id(tuple(item.key for item in planned.items), planned.size)

    def position(self, key: str) -> int:
        """Position of `key` in its planned batch."""
        return next(i for i, item in enumerate(self.planned.items) if item.key == key)

    @property
    def isolated(self) -> bool:
        """Rendered outside its planned batch (alone, where the plan had mates)."""
        return self.origin is not None and len(self.origin.items) > 1

    def again(self, keys) -> list[Batch]:
        """The next attempt for `keys` of this batch: the planned composition once more,
        then each item alone (an item whose planned batch is just itself stays there)."""
        if self.stage == PLANNED and len(self.items) > 1:
            return [dataclasses.replace(self, wanted=frozenset(keys), stage=RETRY)]
        if len(self.items) == 1:
            return [self]
        by_key = {item.key: item for item in self.items}
        return [Batch((by_key[k],), self.size, None, ISOLATED, self.planned) for k in keys]
