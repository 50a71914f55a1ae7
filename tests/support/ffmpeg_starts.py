"""ffmpeg behind a script that logs each start: how many processes an encode path starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def count_ffmpeg_starts(tmp_path: Path, monkeypatch, refuse: str = "") -> Callable[[], list]:
    """Point promptreel at a logging ffmpeg (exiting 1 when its arguments hold `refuse`);
    returns a callable listing the starts' argument lines so far."""
    from pipeline.outputs import encode

    real, log = encode.ffmpeg_exe(), tmp_path / "starts"
    script = tmp_path / "ffmpeg"
    refusal = f'case "$*" in *{refuse}*) exit 1;; esac\n' if refuse else ""
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\n{refusal}exec {real} "$@"\n')
    script.chmod(0o755)
    monkeypatch.setattr(encode, "ffmpeg_exe", lambda: str(script))
    return lambda: log.read_text().splitlines() if log.exists() else []
