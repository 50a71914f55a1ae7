"""A clip's sound (issue 19): samples, their hash, QC, muxing into mp4/webm, refusals."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from pipeline.actor.renderer import Rendered
from pipeline.actor.worker import BatchWorker, WorkerSpec
from pipeline.config import EncodeSettings, RenderSettings
from pipeline.errors import ConfigError, EncodeError, RenderError
from pipeline.models.families import FAMILIES
from pipeline.outputs import qc
from pipeline.outputs.audio import Audio
from pipeline.outputs.encode import check_sound, encode_clip, ffmpeg_exe
from pipeline.rundir.layout import RunDir
from tests.support.items import make_item

FPS = 24.0
RATE = 24000


def frames(count: int = 25) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def tone(seconds: float, level: float = 0.5, channels: int = 2) -> Audio:
    t = np.arange(round(seconds * RATE)) / RATE
    wave = [level * np.sin(2 * np.pi * (220 * (c + 1)) * t) for c in range(channels)]
    return Audio.of(np.stack(wave).astype(np.float32), RATE)


def streams(data: bytes, suffix: str, tmp_path) -> dict:
    """What ffmpeg reads from the clip: {"video": frame count, "audio": (rate, channels,
    seconds)} of the streams it holds."""
    path = tmp_path / f"clip.{suffix}"
    path.write_bytes(data)
    found = {}
    video = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", path, "-map", "0:v", "-f", "rawvideo", "-"],
        capture_output=True,
        check=True,
    ).stdout
    found["video"] = len(video) // (32 * 32 * 3 // 2)  # yuv420p frames
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", path], capture_output=True)
    line = next((x for x in probe.stderr.decode().splitlines() if "Audio:" in x), None)
    if line is not None:
        raw = subprocess.run(
            [
                ffmpeg_exe(),
                "-v",
                "error",
                "-i",
                path,
                "-map",
                "0:a",
                "-f",
                "f32le",
                "-ac",
                "1",
                "-",
            ],
            capture_output=True,
            check=True,
        ).stdout
        rate = int(line.split(" Hz")[0].rsplit(" ", 1)[1])
        found["audio"] = (
            line.split("Audio: ")[1].split(" ")[0].strip(","),
            rate,
            len(raw) / 4 / rate,
        )
    return found


def test_samples_are_kept_as_rendered_and_hashed_as_such():
    audio = Audio.of(np.linspace(-1, 1, 480, dtype=np.float32), RATE)  # (n,) -> one channel
    assert audio.channels == 1 and audio.duration_s == pytest.approx(0.02)
    again = Audio.of(np.linspace(-1, 1, 480, dtype=np.float64), RATE)
    assert audio.sha256() == again.sha256()  # the same float32 samples, the same hash
    moved = Audio.of(np.linspace(-1, 1, 480, dtype=np.float32) * 0.999, RATE)
    assert moved.sha256() != audio.sha256()
    assert audio.columns(audio.fitted(0.03)) == {
        "audio_sha256": audio.sha256(),  # of the samples as rendered
        "audio_sample_rate": RATE,
        "audio_channels": 1,
        "audio_duration_s": pytest.approx(0.03),  # of the track in the clip
    }


def test_the_clip_track_is_the_rendered_one_cut_or_padded_with_silence():
    audio = tone(0.5)
    longer, shorter = audio.fitted(0.6), audio.fitted(0.4)
    assert longer.samples.shape == (2, 0.6 * RATE) and shorter.samples.shape == (2, 0.4 * RATE)
    assert np.array_equal(longer.samples[:, :12000], audio.samples)
    assert not longer.samples[:, 12000:].any()
    assert np.array_equal(shorter.samples, audio.samples[:, :9600])
    assert audio.fitted(0.5) is audio


@pytest.mark.parametrize(
    "samples, rate",
    [
        (np.array([0.1, np.nan], np.float32), RATE),
        (np.zeros((2, 0), np.float32), RATE),
        (np.zeros(10, np.float32), 0),
    ],
)
def test_unusable_sound_is_a_fatal_item_error(samples, rate):
    with pytest.raises(RenderError) as caught:
        Audio.of(samples, rate)
    assert not caught.value.retriable


def test_qc_flags_silent_and_clipped_sound_only():
    def checked(audio):
        return qc.check(frames(), "flag", audio)

    assert "silent" not in checked(tone(1.0))["qc_flags"]
    assert "clipped" not in checked(tone(1.0))["qc_flags"]
    silent = checked(Audio.of(np.zeros((1, RATE), np.float32), RATE))
    assert "silent" in silent["qc_flags"] and silent["qc_audio_rms_dbfs"] == -120.0
    assert "silent" in checked(tone(1.0, level=1e-4))["qc_flags"]  # -83 dBFS
    clipped = checked(Audio.of(np.clip(tone(1.0, level=4.0).samples, -1, 1), RATE))
    assert "clipped" in clipped["qc_flags"] and clipped["qc_audio_clipped"] > 0.5
    assert qc.failure_reason(clipped).startswith("QCFailed:")
    assert "qc_audio_rms_dbfs" not in qc.check(frames(), "flag")  # no sound: no columns


@pytest.mark.parametrize("fmt, codec, rate", [("mp4", "aac", RATE), ("webm", "opus", 48000)])
def test_sound_is_muxed_reproducibly_and_lasts_as_long_as_the_video(fmt, codec, rate, tmp_path):
    clip = frames(25)
    audio = tone(25 / FPS)
    settings = EncodeSettings(format=fmt)
    data = encode_clip(clip, FPS, settings, audio=audio)
    assert encode_clip(clip, FPS, settings, audio=audio) == data  # same samples, same bytes
    found = streams(data, fmt, tmp_path)
    assert found["video"] == 25
    got_codec, got_rate, seconds = found["audio"]
    assert (got_codec, got_rate) == (codec, rate)
    assert abs(seconds - 25 / FPS) <= 1 / FPS  # within one frame of the video
    assert "audio" not in streams(encode_clip(clip, FPS, settings), fmt, tmp_path)


@pytest.mark.parametrize("fmt", ["gif", "webp", "png"])
def test_formats_without_sound_refuse_it(fmt):
    loud = [f for f in FAMILIES.values() if f.audio_of is not None]
    assert loud, "a family renders sound (LTX-2)"
    with pytest.raises(ConfigError, match="--no-audio"):
        check_sound(EncodeSettings(format=fmt), loud)
    check_sound(EncodeSettings(format=fmt, audio=False), loud)  # dropped on purpose
    check_sound(EncodeSettings(format=fmt), [FAMILIES["wan"]])  # a silent family
    with pytest.raises(EncodeError):
        encode_clip(frames(3), FPS, EncodeSettings(format=fmt), audio=tone(0.1))


@pytest.mark.parametrize("keep", [True, False])
def test_the_worker_writes_the_sound_and_its_columns_or_drops_it(keep, tmp_path):
    run = RunDir(str(tmp_path / "run"))
    spec = WorkerSpec("null", RenderSettings(model="null"), EncodeSettings(audio=keep), run)
    worker = BatchWorker(spec)
    item = make_item("a bell", 3, model="null", fps=FPS)
    audio = tone(25 / FPS - 0.03)  # as LTX-2's: ~30 ms short of the video
    row = worker.finish([(item, Rendered(frames(25), audio))], 0.1)[0]
    worker.close()
    assert row["status"] == "ok"
    found = streams(
        (tmp_path / "run" / row["uri"].split("/run/", 1)[1]).read_bytes(), "mp4", tmp_path
    )
    if keep:
        assert row["audio_sha256"] == audio.sha256() and row["audio_sample_rate"] == RATE
        assert row["audio_channels"] == 2 and row["audio_duration_s"] == pytest.approx(25 / FPS)
        assert "audio" in found and row["qc_audio_rms_dbfs"] > -10
    else:  # --no-audio: no stream, no columns
        assert "audio" not in found
        assert row["audio_sha256"] is None and row["qc_audio_rms_dbfs"] is None
