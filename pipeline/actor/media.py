"""Media inputs inside a render actor: each actor fetches its own (never through Ray's
object store), checks the bytes are the ones validation hashed, decodes them as diffusers'
`load_image` / `load_video` do and fits them to the item's size. Decoded media are cached
by content hash (bounded LRUs: images by count, videos by decoded bytes), so rows sharing a
file fetch it once per actor."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from pipeline.media.fit import fit_image
from pipeline.media.probe import decode_image
from pipeline.media.source import MediaError, MediaLimits, read_verified
from pipeline.media.video import decode_video
from pipeline.plan.batches import Item, MediaInput
from pipeline.schema import REFERENCE_IMAGES, VIDEO_COLUMNS


@dataclass
class MediaFetcher:
    limits: MediaLimits = field(default_factory=MediaLimits)
    storage_options: dict | None = None
    capacity: int = 32  # decoded images kept per actor
    video_bytes: int = 1 << 30  # decoded video frames kept per actor (RGB bytes)
    _images: OrderedDict = field(default_factory=OrderedDict)
    _videos: OrderedDict = field(default_factory=OrderedDict)
    fetches: int = 0

    def inputs(self, item: Item, exact_frames: bool = True) -> dict:
        """`__call__` keywords (image=, last_image=, video=, mask=, reference_images=) for the
        item. Images are fitted to its size; a video is its first num_frames - frame_index
        frames (what the clip holds from the condition's frame on), each fitted like an
        image; reference images stay as they are (the pipeline resizes them).
        `exact_frames`: a video must hold that many (the clip follows it frame for frame);
        else fewer is what the call gets (an LTX condition video shorter than the clip)."""
        fitted = {}
        for media in item.media:
            if media.name == REFERENCE_IMAGES:  # the pipeline resizes them itself
                fitted.setdefault(media.name, []).append(self.image(media))
            else:
                fitted[media.name] = self._fitted(item, media, exact_frames, first_only=False)
        return fitted

    def posters(self, item: Item, exact_frames: bool = True) -> dict:
        """Each media input's first picture as the call got it (a video's first frame,
        fitted alone, not the whole video again); reference images have none."""
        return {
            media.name: self._fitted(item, media, exact_frames, first_only=True)
            for media in item.media
            if media.name != REFERENCE_IMAGES
        }

    def _fitted(self, item: Item, media: MediaInput, exact: bool, first_only: bool):
        def fit(image):
            return fit_image(image, item.width, item.height, item.resize or "crop")

        if media.name not in VIDEO_COLUMNS:
            return fit(self.image(media))
        count = item.num_frames - int(item.family_args().get("frame_index", 0))
        frames = self.video(media, count, exact)
        return fit(frames[0]) if first_only else [fit(frame) for frame in frames]

    def image(self, media: MediaInput):
        cached = self._images.get(media.sha256)
        if cached is not None:
            self._images.move_to_end(media.sha256)
            return cached
        image = decode_image(self._read(media))
        self._images[media.sha256] = image
        while len(self._images) > self.capacity:
            self._images.popitem(last=False)
        return image

    def video(self, media: MediaInput, frames: int, exact: bool = True) -> list:
        """The video's first `frames` frames (decoding only those; a row wanting more than
        the cache holds decodes again)."""
        cached = self._videos.get(media.sha256)
        if cached is not None and len(cached) >= frames:
            self._videos.move_to_end(media.sha256)
            return cached[:frames]
        decoded = decode_video(self._read(media), frames)
        if exact and len(decoded) < frames:  # validation counted more: it stopped early
            raise MediaError(f"the video decodes to {len(decoded)} frames, the row needs {frames}")
        self._videos[media.sha256] = decoded
        while len(self._videos) > 1 and _size(self._videos) > self.video_bytes:
            self._videos.popitem(last=False)
        return decoded

    def _read(self, media: MediaInput) -> bytes:
        self.fetches += 1
        return read_verified(media.uri, media.sha256, self.limits, self.storage_options)


def _size(videos: OrderedDict) -> int:
    return sum(f.width * f.height * 3 for frames in videos.values() for f in frames)
