"""Frame sampling for the per-frame scorers, and the scorer registry / --score flag."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.score import SCORERS, ScoreError, parse_score_flag
from pipeline.score.frames import mean_per_clip, sample_indices, sampled, sampled_frames


def test_short_clips_keep_every_frame():
    assert sample_indices(1) == [0]
    assert sample_indices(5) == [0, 1, 2, 3, 4]
    assert sample_indices(16) == list(range(16))


def test_long_clips_sample_16_spread_over_the_clip():
    # linspace(0, 39, 16) = 2.6 k: 2.6 -> 3, 5.2 -> 5, 7.8 -> 8, ... (worked by hand)
    assert sample_indices(40) == [0, 3, 5, 8, 10, 13, 16, 18, 21, 23, 26, 29, 31, 34, 36, 39]
    assert sample_indices(17) == [*range(8), *range(9, 17)]  # 16k/15: 7.47 -> 7, 8.53 -> 9
    for frames in (17, 33, 81, 121, 1000):
        picked = sample_indices(frames)
        assert len(picked) == 16 and picked[0] == 0 and picked[-1] == frames - 1
        assert all(a < b for a, b in zip(picked, picked[1:]))


def test_ties_round_half_to_even():
    assert sample_indices(4, most=3) == [0, 2, 3]  # 1.5 -> 2
    assert sample_indices(6, most=3) == [0, 2, 5]  # 2.5 -> 2 (half up would give 3)


def test_sampled_picks_those_frames_and_refuses_other_arrays():
    clip = np.arange(40, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 3, 3), np.uint8)
    assert sampled(clip)[:, 0, 0, 0].tolist() == sample_indices(40)
    assert sampled(clip[:5]).shape == (5, 2, 3, 3)
    for bad in (clip.astype(np.float32), clip[..., :2], clip[0], clip[:0]):
        with pytest.raises(ScoreError):
            sampled(bad)


def test_frames_of_several_clips_are_flattened_and_averaged_back_by_clip():
    clips = [(np.zeros((3, 2, 2, 3), np.uint8), "a"), (np.zeros((40, 2, 2, 3), np.uint8), "b")]
    frames, owners = sampled_frames(clips)
    assert len(frames) == 19 and owners.tolist() == [0] * 3 + [1] * 16
    values = np.array([1.0, 2.0, 6.0] + [10.0] * 16)
    assert mean_per_clip(values, owners, 2) == [3.0, 10.0]


def test_registry_names_the_three_scorers():
    assert list(SCORERS) == ["clip", "aesthetic", "motion"]
    assert [s.needs_checkpoint for s in SCORERS.values()] == [True, True, False]
    assert all(s.description and "\n" not in s.description for s in SCORERS.values())


def test_score_flags_parse():
    assert parse_score_flag("clip") == ("clip", None)
    assert parse_score_flag(" clip = /models/clip ") == ("clip", "/models/clip")
    assert parse_score_flag("motion") == ("motion", None)
    assert parse_score_flag("aesthetic=h.safetensors") == ("aesthetic", "h.safetensors")
    assert parse_score_flag("aesthetic=/c::/h.safetensors") == ("aesthetic", "/c::/h.safetensors")


@pytest.mark.parametrize(
    "flag, words",
    [
        ("clipp=x", ["unknown scorer 'clipp'", "clip, aesthetic, motion"]),
        ("", ["unknown scorer ''", "clip, aesthetic, motion"]),
        ("motion=x", ["motion takes no checkpoint"]),
        ("clip=", ["nothing after '='", "openai/clip-vit-base-patch32"]),
        ("aesthetic", ["aesthetic needs", "[CLIP::]HEAD.safetensors"]),
        ("aesthetic=head.pth", ["'head.pth'", ".safetensors"]),
        ("aesthetic=a::b::c.safetensors", ["CLIP::HEAD.safetensors"]),
        ("aesthetic=::c.safetensors", ["CLIP::HEAD.safetensors"]),
    ],
)
def test_bad_score_flags_are_refused_clearly(flag, words):
    with pytest.raises(ScoreError) as caught:
        parse_score_flag(flag)
    assert all(word in str(caught.value) for word in words), str(caught.value)
    assert caught.value.exit_code == 2


def test_clips_decoded_in_one_process_equal_each_decoded_alone():
    """The scorer decodes a call's clips in one ffmpeg (decode_clips): each must equal its
    own decode_clip, whatever the sizes, lengths and formats beside it; one bad clip fails
    the call (the scorer then decodes each alone and fails only that one)."""
    from pipeline.config import EncodeSettings
    from pipeline.errors import EncodeError
    from pipeline.models.null import NullPipeline
    from pipeline.outputs.encode import decode_clip, decode_clips, encode_clip

    null = NullPipeline()
    clips = [
        encode_clip(
            null.frames_for(f"clip {i}", i, frames, height, width), 8.0, EncodeSettings(format=fmt)
        )
        for i, (frames, height, width, fmt) in enumerate(
            [(9, 64, 64, "mp4"), (5, 32, 48, "mp4"), (17, 48, 32, "webm"), (4, 16, 16, "png")]
        )
    ]
    together = decode_clips(clips)
    alone = [decode_clip(clip) for clip in clips]
    assert [f.shape for f in together] == [
        (9, 64, 64, 3),
        (5, 32, 48, 3),
        (17, 48, 32, 3),
        (4, 16, 16, 3),
    ]
    assert all(np.array_equal(a, b) for a, b in zip(together, alone))
    with pytest.raises(EncodeError):
        decode_clips([clips[0], b"not a clip"])
