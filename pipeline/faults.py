"""Test-only fault injection, selected by --inject-fault (never on by default).

A fault is "KIND:PROMPT": when an item with exactly that prompt is processed,
  crash   the render process exits at once (as a segfault or OOM-kill would)
  hang    the render blocks for an hour (a stuck GPU)
  encode  ffmpeg is given an unknown encoder, so the real ffmpeg fails
  nan     the frames come back as NaN
  storage the clip write raises OSError (a storage blip)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from pipeline.errors import ConfigError

KINDS = ("crash", "hang", "encode", "nan", "storage")


@dataclass(frozen=True)
class Faults:
    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, specs) -> Faults:
        rules = []
        for spec in specs or ():
            kind, sep, prompt = spec.partition(":")
            if not sep or kind not in KINDS:
                raise ConfigError(f"--inject-fault {spec!r}: expected KIND:PROMPT, KIND in {KINDS}")
            rules.append((kind, prompt))
        return cls(tuple(rules))

    def hits(self, kind: str, prompt: str) -> bool:
        return (kind, prompt) in self.rules

    def before_render(self, prompts) -> None:
        for prompt in prompts:
            if self.hits("crash", prompt):
                os._exit(17)
            if self.hits("hang", prompt):
                time.sleep(3600)
