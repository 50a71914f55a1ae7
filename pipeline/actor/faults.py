"""Test-only fault injection, selected by --inject-fault (never on by default).

A fault is "KIND:PROMPT": when an item with exactly that prompt is processed (for crash,
hang and stall, PROMPT may also be an item key, to hit one request of a prompt),
  crash   the render process exits at once (as a segfault or OOM-kill would)
  hang    the render blocks for an hour (a stuck GPU)
  stall   the render blocks until its process is killed, once per run dir: it first
          writes its pid to `_state/stalled-<key>`, so a test kills exactly the process
          that holds the batch, at a point it knows (a retry then renders)
  encode  ffmpeg is given an unknown encoder, so the real ffmpeg fails
  nan     the frames come back as NaN
  storage the clip write raises OSError (a storage blip)
  black   the frames come back black (for QC: flagged black, flat, frozen)
and one for the driver, where PROMPT names a step of the job instead:
  pause   at that step (`start`: planned, before Ray and actors start; `score`: the first
          scores are saved in the scorers' ledgers; `sweep`: every result is in the
          ledger, nothing swept, no catalog yet) the driver says so on
          stderr and blocks until a line arrives on its stdin (it goes on) or, with no
          stdin, until it is killed: a test acts exactly there, not within a timing window
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

from pipeline.errors import ConfigError

KINDS = ("crash", "hang", "stall", "encode", "nan", "storage", "black", "pause")
PAUSE_STEPS = ("start", "score", "sweep")


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
            if kind == "pause" and prompt not in PAUSE_STEPS:
                raise ConfigError(f"--inject-fault {spec!r}: pause at one of {PAUSE_STEPS}")
            rules.append((kind, prompt))
        return cls(tuple(rules))

    def hits(self, kind: str, prompt: str, key: str | None = None) -> bool:
        return (kind, prompt) in self.rules or (key is not None and (kind, key) in self.rules)

    def before_render(self, items) -> None:
        """Every real item of the call, padding mates included: a real crash would not
        care whether its output is kept."""
        for item in items:
            if self.hits("crash", item.prompt, item.key):
                os._exit(17)
            if self.hits("hang", item.prompt, item.key):
                time.sleep(3600)

    def stall(self, items, run) -> None:
        """The `stall` fault: mark (pid) and block for good, unless marked already."""
        for item in items:
            if (
                self.hits("stall", item.prompt, item.key)
                and run.read_bytes(run.stall_mark(item.key)) is None
            ):
                run.write(run.stall_mark(item.key), str(os.getpid()).encode())
                threading.Event().wait()

    def pause(self, step: str) -> None:
        """The driver's `pause` fault: announce the step, then block until a line arrives on
        stdin, or for good when stdin has none to give (killed there)."""
        if self.hits("pause", step):
            print(f"promptreel: paused before {step} (test fault)", file=sys.stderr, flush=True)
            if not sys.stdin or not sys.stdin.readline():
                threading.Event().wait()
