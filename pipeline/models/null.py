"""`--model null`: cheap deterministic frames, no diffusion. A benchmarking aid that
measures everything around the model (plan, encode, ledger, catalog)."""

from __future__ import annotations

import hashlib

import numpy as np


class NullPipeline:
    def frames_for(self, prompt: str, seed: int, num_frames: int, height: int, width: int):
        digest = hashlib.sha256(f"{seed}\0{prompt}".encode("utf-8", "surrogatepass")).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        base = rng.integers(0, 256, size=(1, height, width, 3), dtype=np.uint8)
        # A slow drift per frame so the clip moves and the encoder does real work.
        drift = np.arange(num_frames, dtype=np.uint8).reshape(-1, 1, 1, 1) * np.uint8(3)
        return base + drift
