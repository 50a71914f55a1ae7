"""fit_image policies and the Wan-style derive_size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from pipeline.media.fit import RESIZE_POLICIES, crop_box, derive_size, fit_image, inner_size


def marked(width: int, height: int) -> Image.Image:
    """Gray, with a red 10x10 square at the centre and a green column at the left edge."""
    array = np.full((height, width, 3), 128, np.uint8)
    cy, cx = height // 2, width // 2
    array[cy - 5 : cy + 5, cx - 5 : cx + 5] = (255, 0, 0)
    array[:, :4] = (0, 255, 0)
    return Image.fromarray(array)


def is_red(pixel) -> bool:
    """Red up to LANCZOS ringing (a downscaled marker is not exactly (255, 0, 0))."""
    r, g, b = (int(v) for v in pixel)
    return r > 230 and g < 30 and b < 30


@pytest.mark.parametrize("policy", RESIZE_POLICIES)
def test_same_size_returns_the_same_object(policy):
    image = marked(64, 32)
    assert fit_image(image, 64, 32, policy) is image


@pytest.mark.parametrize("policy", RESIZE_POLICIES)
@pytest.mark.parametrize("source", [(200, 100), (100, 200), (90, 90), (33, 17)])
def test_every_policy_gives_the_target_size(policy, source):
    out = fit_image(marked(*source), 48, 80, policy)
    assert out.size == (48, 80) and out.mode == "RGB"


def test_default_policy_is_crop():
    image = marked(200, 100)
    assert np.array_equal(
        np.asarray(fit_image(image, 50, 50)), np.asarray(fit_image(image, 50, 50, "crop"))
    )


def test_crop_keeps_the_centre_of_a_wide_image():
    out = np.asarray(fit_image(marked(200, 100), 100, 100, "crop"))
    assert tuple(out[50, 50]) == (255, 0, 0)  # the centre marker survives, unmoved (scale 1)
    assert tuple(out[50, 2]) == (128, 128, 128)  # the green left edge was cut away


def test_crop_box_rounding():
    assert crop_box((200, 100), 100, 100) == (50, 0, 150, 100)
    assert crop_box((100, 200), 100, 100) == (0, 50, 100, 150)
    # 101 wide to 1:1 at 100 high: a 1-pixel margin, cut on the right
    assert crop_box((101, 100), 1, 1) == (0, 0, 100, 100)
    # 16:9 target from 100x100: kept height 56.25 rounds to 56, margin 44 split 22/22
    assert crop_box((100, 100), 16, 9) == (0, 22, 100, 78)
    # kept side exactly .5: rounds half up (3x2 from 5 wide, 3 high -> 4.5 -> 5)
    assert crop_box((7, 3), 3, 2) == (1, 0, 6, 3)


def test_pad_leaves_black_bars():
    out = np.asarray(fit_image(marked(200, 100), 100, 100, "pad"))
    assert inner_size((200, 100), 100, 100) == (100, 50)
    assert (out[:25] == 0).all() and (out[75:] == 0).all()  # bars above and below
    assert is_red(out[50, 50])
    assert (out[30:70, 10:90] > 0).any(axis=-1).all()  # the picture itself is not black


def test_pad_of_a_tall_image_pads_left_and_right():
    out = np.asarray(fit_image(marked(50, 100), 100, 100, "pad"))
    assert (out[:, :25] == 0).all() and (out[:, 75:] == 0).all()


def test_stretch_ignores_the_aspect():
    out = np.asarray(fit_image(marked(200, 100), 100, 100, "stretch"))
    assert out[:, :1, 1].min() > 200  # the green left edge stays, squeezed
    assert is_red(out[50, 50])


def test_fit_is_deterministic():
    image = marked(123, 77)
    for policy in RESIZE_POLICIES:
        first = np.asarray(fit_image(image, 64, 48, policy))
        assert np.array_equal(first, np.asarray(fit_image(image, 64, 48, policy)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown resize policy"):
        fit_image(marked(20, 20), 10, 10, "zoom")
    with pytest.raises(ValueError, match="positive"):
        fit_image(marked(20, 20), 0, 10)
    with pytest.raises(ValueError, match="positive"):
        derive_size(0, 720, 480 * 832, 16)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        # aspect 720/1280: sqrt(399360 * 0.5625) = 473.96 -> 474 -> 464;
        #                  sqrt(399360 / 0.5625) = 842.6 -> 843 -> 832
        ((1280, 720), (464, 832)),
        # portrait: the same numbers swapped
        ((720, 1280), (832, 464)),
        # square: sqrt(399360) = 631.95 -> 632 -> 624
        ((512, 512), (624, 624)),
        # 4:3: sqrt(399360 * 0.75) = 547.28 -> 547 -> 544; sqrt(399360 / 0.75) = 729.7 -> 730 -> 720
        ((1024, 768), (544, 720)),
    ],
)
def test_derive_size_matches_the_wan_formula(image, expected):
    assert derive_size(*image, area=480 * 832, multiple=16) == expected
    aspect = image[1] / image[0]
    formula = (
        round(math.sqrt(480 * 832 * aspect)) // 16 * 16,
        round(math.sqrt(480 * 832 / aspect)) // 16 * 16,
    )
    assert formula == expected


def test_derive_size_never_below_the_multiple():
    # sqrt(4096 * 0.001) = 2.02 -> 2 -> 0, raised to 16;
    # sqrt(4096 / 0.001) = 2023.9 -> 2024 -> 2016
    assert derive_size(10_000, 10, area=64 * 64, multiple=16) == (16, 2016)
