"""promptreel's stand-in for Cosmos' guardrail when `cosmos_guardrail` is not installed.

`Cosmos2_5_PredictBasePipeline.__init__` builds `cosmos_guardrail.CosmosSafetyChecker()`
when given no safety checker (diffusers' own class of that name raises ImportError when
the package is missing), and `__call__` refuses to run without one. This object is what
the `cosmos2.5` family's `load_args` passes instead: it checks nothing. Its
`check_text_safety` says every prompt is safe; it is not a `CosmosSafetyChecker`, so
`__call__` skips the video check (and its uint8 round trip) entirely: the pixels are the
pipeline's own. Imported only by `load_args` (torch at module level, unlike the adapters).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin
from diffusers.models.modeling_utils import ModelMixin


class PassThroughSafetyChecker(ModelMixin, ConfigMixin):
    """No guardrail: every prompt passes, frames pass unchanged. A module (one empty
    buffer) so that the pipeline's `.to(device)`, `device` and `dtype` work on it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_device_tracker", torch.zeros(1), persistent=False)

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames: np.ndarray) -> np.ndarray:
        return frames
