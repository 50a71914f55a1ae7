"""Video cells (pipeline/media/video.py): probed before any GPU time, decoded exactly as
diffusers' load_video decodes them (imageio's ffmpeg reader; Pillow for GIF)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import MediaLimits
from pipeline.media.source import MediaError
from pipeline.media.video import decode_video, probe_video
from tests.support.media_files import ffmpeg_made, gif_video, png_rgb, video_file


def test_probe_reads_size_frames_and_fps_of_an_mp4(tmp_path):
    data = video_file(tmp_path, width=48, height=32, frames=9).read_bytes()
    info = probe_video(data, MediaLimits())
    assert (info.width, info.height, info.frames) == (48, 32, 9)
    assert info.fps == pytest.approx(8.0) and info.bytes == len(data)
    assert len(info.sha256) == 64


def test_probe_reads_an_animated_gif(tmp_path):
    info = probe_video(gif_video(tmp_path, frames=7).read_bytes(), MediaLimits())
    assert (info.width, info.height, info.frames) == (32, 32, 7)
    assert info.fps == pytest.approx(10.0)  # GIF delays are in 1/100 s


@pytest.mark.parametrize("maker", ["mp4", "gif"])
def test_frames_equal_diffusers_load_video(tmp_path, maker):
    """load_video as a user calls it (GIF frames converted to RGB, which the pipelines take)."""
    from diffusers.utils import load_video

    path = video_file(tmp_path) if maker == "mp4" else gif_video(tmp_path)
    ours = decode_video(path.read_bytes(), 9)
    theirs = load_video(str(path), convert_method=lambda fs: [f.convert("RGB") for f in fs])
    assert len(ours) == len(theirs) == 9
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.mode == "RGB"
        assert np.array_equal(np.asarray(mine), np.asarray(reference))


TESTSRC = ("-f", "lavfi", "-i", "testsrc=size=64x32:rate=8", "-frames:v", "9")


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("vp9.webm", ("-c:v", "libvpx-vp9")),
        ("yuv444.mp4", ("-pix_fmt", "yuv444p", "-c:v", "libx264")),
        ("mjpeg.avi", ("-c:v", "mjpeg")),
    ],
)
def test_other_codecs_and_containers_decode_as_load_video_does(tmp_path, name, codec):
    from diffusers.utils import load_video

    path = ffmpeg_made(tmp_path, name, *TESTSRC, *codec)
    info = probe_video(path.read_bytes(), MediaLimits())
    assert (info.width, info.height, info.frames) == (64, 32, 9)
    ours, theirs = decode_video(path.read_bytes(), 9), load_video(str(path))
    assert [np.asarray(f).tolist() for f in ours] == [np.asarray(f).tolist() for f in theirs]


def test_an_audio_file_is_not_a_video(tmp_path):
    path = ffmpeg_made(tmp_path, "tone.m4a", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac")
    with pytest.raises(MediaError, match="no video stream"):
        probe_video(path.read_bytes(), MediaLimits())


def test_decode_stops_at_the_frames_a_row_uses(tmp_path):
    data = video_file(tmp_path, frames=9).read_bytes()
    first = decode_video(data, 5)
    assert len(first) == 5
    assert np.array_equal(np.asarray(first[4]), np.asarray(decode_video(data, 9)[4]))


def test_a_still_image_is_not_a_video(tmp_path):
    with pytest.raises(MediaError, match="still image"):
        probe_video(png_rgb(tmp_path).read_bytes(), MediaLimits())


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty file"),
        (b"just some text, not a video\n" * 20, "the bytes look like text"),
        (b"%PDF-1.4\n" + b"\x00" * 300, "a PDF document"),
    ],
)
def test_what_is_not_a_video_is_refused_saying_what_it_looks_like(data, says):
    with pytest.raises(MediaError, match=says):
        probe_video(data, MediaLimits())


def test_a_truncated_mp4_is_refused(tmp_path):
    data = video_file(tmp_path, frames=9).read_bytes()
    with pytest.raises(MediaError):
        probe_video(data[: len(data) // 3], MediaLimits())


def test_too_many_pixels_per_frame_is_refused_before_decoding(tmp_path):
    data = video_file(tmp_path, width=64, height=48).read_bytes()
    with pytest.raises(MediaError, match="over the 2000 limit; it was not decoded"):
        probe_video(data, MediaLimits(max_pixels=2000))
    gif = gif_video(tmp_path, width=64, height=48).read_bytes()
    with pytest.raises(MediaError, match="over the 2000 limit"):
        probe_video(gif, MediaLimits(max_pixels=2000))


def test_byte_limit_and_minimum_side(tmp_path):
    data = video_file(tmp_path).read_bytes()
    with pytest.raises(MediaError, match="-byte limit"):
        probe_video(data, MediaLimits(max_bytes=100))
    with pytest.raises(MediaError, match="too small"):
        probe_video(data, MediaLimits(min_side=64))


# --- validate: video rows, before any GPU time -------------------------------------------


def table_of(rows):
    """Every column any row gives (from_pylist alone would take the first row's)."""
    import pyarrow as pa

    columns = list(dict.fromkeys(name for row in rows for name in row))
    return pa.Table.from_pylist([{name: row.get(name) for name in columns} for row in rows])


def validate_rows(rows):
    from pipeline.plan.manifest import validate

    return validate(table_of(rows)).table.to_pylist()


def problems_of(rows) -> list[str]:
    from pipeline.errors import ManifestError
    from pipeline.plan.manifest import validate

    with pytest.raises(ManifestError) as caught:
        validate(table_of(rows))
    assert caught.value.exit_code == 2
    return [str(p) for p in caught.value.problems]


@pytest.fixture(scope="module")
def wan():
    from tests.support.checkpoints import checkpoint_dir

    return str(checkpoint_dir("wan2.1"))


def test_a_video_row_takes_the_frames_and_size_its_video_covers(tmp_path, wan):
    from pipeline.media.fit import derive_size
    from pipeline.models import VIDEO_TASK
    from pipeline.models.families import FAMILIES

    video = video_file(tmp_path, width=64, height=32, frames=7)
    row = validate_rows([dict(prompt="p", seed=1, model=wan, video=str(video))])[0]
    family = FAMILIES["wan2.1-v2v"]
    assert row["model"] == wan + VIDEO_TASK
    assert row["num_frames"] == 5  # 4k+1 within 7 frames
    expected = derive_size(64, 32, family.default_area, family.shape.side_multiple)
    assert (row["height"], row["width"]) == expected
    assert row["strength"] == 0.8 and len(row["video_sha256"]) == 64


def test_video_rows_are_refused_by_row_and_field(tmp_path, wan):
    from tests.support.checkpoints import checkpoint_dir

    video = str(video_file(tmp_path, frames=9))
    shape = dict(height=32, width=32, num_inference_steps=4)
    rows = [
        dict(id="long", prompt="p", seed=1, model=wan, video=video, num_frames=13, **shape),
        dict(id="weak", prompt="p", seed=1, model=wan, video=video, strength=0.2, **shape),
        dict(id="zero", prompt="p", seed=1, model=wan, video=video, strength=0.0, **shape),
        dict(id="png", prompt="p", seed=1, model=wan, video=str(png_rgb(tmp_path)), **shape),
        dict(id="ltx", prompt="p", seed=1, model=str(checkpoint_dir("ltx")), video=video),
        dict(id="text", prompt="p", seed=1, model=wan, strength=0.5, **shape),
    ]
    found = problems_of(rows)
    expected = [
        "row 0 (id 'long'): video: the video has 9 frames and this row asks for num_frames=13 "
        "(at most 9 for wan2.1-v2v)",
        "row 1 (id 'weak'): strength: expected strength x num_inference_steps of at least 1 "
        "(diffusers denoises int(steps x strength) steps), got 0.2 x 4",
        "row 2 (id 'zero'): strength: expected a number above 0, at most 1, got 0.0",
        "row 3 (id 'png'): video: not a video: the bytes are a still image",
        "row 4 (id 'ltx'): video: ltx models do not take video",
        "row 5 (id 'text'): strength: model",
    ]
    assert len(found) == len(expected), found
    for message, start in zip(found, expected, strict=True):
        assert message.startswith(start), (message, start)


def test_ltx_conditions_are_validated_by_row(tmp_path):
    """One condition per row (an image or a video) at a frame of the clip; a shorter video
    than the clip is fine (the pipeline trims it) and sets nothing of the row's size."""
    from tests.support.checkpoints import checkpoint_dir

    ltx = str(checkpoint_dir("ltx-condition"))
    video, image = str(video_file(tmp_path, frames=9)), str(png_rgb(tmp_path, 32, 32))
    base = dict(prompt="p", seed=1, model=ltx, height=32, width=32, num_frames=17)
    ok = validate_rows([dict(base, video=video), dict(base, image=image, frame_index=16)])
    assert [(r["num_frames"], r["frame_index"], r["strength"]) for r in ok] == [
        (17, 0, 1.0),
        (17, 16, 1.0),
    ]
    found = problems_of(
        [
            dict(base, id="both", image=image, video=video),
            dict(base, id="late", image=image, frame_index=17),
            dict(base, id="text", frame_index=2),
        ]
    )
    assert found == [
        "row 0 (id 'both'): video: expected image or video, not both: ltx-condition models "
        "take one condition per row",
        "row 1 (id 'late'): frame_index: expected a frame of the clip, 0 to 16 (num_frames "
        "17), got 17",
        "row 2 (id 'text'): frame_index: only rows that give image or video take frame_index",
    ], found


def test_a_resume_reads_no_unchanged_video_again_and_keeps_its_frame_count(
    tmp_path, wan, monkeypatch
):
    """The hash cache holds a video's frame count: a resume derives the same num_frames
    without reading the file; the same file as an image is another entry (a miss)."""
    import pipeline.plan.media_rows as media_rows
    from pipeline.plan.manifest import validate
    from pipeline.plan.media_rows import MediaHashes, MediaOptions

    video = video_file(tmp_path, frames=7)
    table = table_of([dict(prompt="p", seed=1, model=wan, video=str(video))])
    hashes = MediaHashes()
    first = validate(table, media=MediaOptions(hashes=hashes)).table
    cached = MediaHashes.from_json(hashes.to_json())
    assert cached.get(media_rows.stat_media(str(video), MediaLimits()), "image") is None

    def unexpected(*_args, **_kwargs):
        raise AssertionError("read again")

    monkeypatch.setattr(media_rows, "read_media", unexpected)
    again = validate(table, media=MediaOptions(hashes=cached)).table
    assert again["num_frames"].to_pylist() == first["num_frames"].to_pylist() == [5]
    assert again["video_sha256"] == first["video_sha256"] and not cached.changed


def test_reference_images_are_validated_by_row(tmp_path, wan):
    """VACE's list of images: one location, a list, or the list as JSON text (CSV); each
    checked as an image; families without VACE refuse them."""
    import json

    from tests.support.checkpoints import checkpoint_dir

    vace = str(checkpoint_dir("wan-vace"))
    video, image = str(video_file(tmp_path, frames=9)), str(png_rgb(tmp_path, 32, 32))
    base = dict(prompt="p", seed=1, model=vace, video=video, height=32, width=32, num_frames=5)
    ok = validate_rows(
        [dict(base, reference_images=image), dict(base, reference_images=json.dumps([image]))]
    )
    assert ok[0]["reference_images"] == ok[1]["reference_images"]  # the same canonical cell
    assert json.loads(ok[0]["reference_images"])[0]["uri"] == image
    found = problems_of(
        [
            dict(base, id="gone", reference_images=json.dumps([image, str(tmp_path / "x.png")])),
            dict(base, id="empty", reference_images="[]"),
            dict(base, id="text", model=wan, video=None, reference_images=image),
        ]
    )
    assert len(found) == 3, found
    assert found[0].startswith("row 0 (id 'gone'): reference_images: ") and "x.png" in found[0]
    assert found[1] == "row 1 (id 'empty'): reference_images: 1 to 8 reference images, got 0"
    assert found[2].startswith(
        "row 2 (id 'text'): reference_images: wan models do not take reference_images"
    )
