"""Media inside an actor (pipeline/actor/media.py): the bytes must be the ones validation
hashed, images are decoded like load_image and fitted, and cached by content hash."""

from __future__ import annotations

import pytest

from pipeline.actor.media import MediaFetcher
from pipeline.media.source import MediaError, sha256_hex
from pipeline.plan.batches import MediaInput
from tests.support.items import make_item
from tests.support.media_files import png_rgb


def test_bytes_changed_since_validation_are_refused_not_rendered(tmp_path):
    path = png_rgb(tmp_path, 32, 32)
    fetcher = MediaFetcher()
    with pytest.raises(MediaError, match="changed since validation") as caught:
        fetcher.image(MediaInput("image", str(path), "0" * 64))
    assert not caught.value.retriable  # another attempt would read the same new bytes


def test_rows_sharing_an_image_fetch_it_once_and_get_it_fitted(tmp_path):
    path = png_rgb(tmp_path, 64, 32)
    media = MediaInput("image", str(path), sha256_hex(path.read_bytes()))
    fetcher = MediaFetcher()
    wide = make_item("a", 1, height=16, width=32, media=(media,), resize="crop")
    square = make_item("b", 2, height=16, width=16, media=(media,), resize="pad")
    assert fetcher.inputs(wide)["image"].size == (32, 16)
    assert fetcher.inputs(square)["image"].size == (16, 16)
    assert fetcher.fetches == 1
