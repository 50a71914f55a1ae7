"""Media inputs inside a render actor: each actor fetches its own (never through Ray's
object store), checks the bytes are the ones validation hashed, decodes them as diffusers'
`load_image` does and fits them to the item's size. Decoded images are cached by content
hash (a bounded LRU), so rows sharing an image fetch it once per actor."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from pipeline.media.fit import fit_image
from pipeline.media.probe import decode_image
from pipeline.media.source import MediaLimits, read_verified
from pipeline.plan.batches import Item, MediaInput


@dataclass
class MediaFetcher:
    limits: MediaLimits = field(default_factory=MediaLimits)
    storage_options: dict | None = None
    capacity: int = 32  # decoded images kept per actor
    _images: OrderedDict = field(default_factory=OrderedDict)
    fetches: int = 0

    def inputs(self, item: Item) -> dict:
        """`__call__` keywords (image=, last_image=) for the item, fitted to its size."""
        return {
            media.name: fit_image(self.image(media), item.width, item.height, item.resize or "crop")
            for media in item.media
        }

    def image(self, media: MediaInput):
        cached = self._images.get(media.sha256)
        if cached is not None:
            self._images.move_to_end(media.sha256)
            return cached
        data = read_verified(media.uri, media.sha256, self.limits, self.storage_options)
        self.fetches += 1
        image = decode_image(data)
        self._images[media.sha256] = image
        while len(self._images) > self.capacity:
            self._images.popitem(last=False)
        return image
