"""CLIPScore (Hessel et al. 2021, "CLIPScore: A Reference-free Evaluation Metric for
Image Captioning"), per image-text pair, averaged over a clip's sampled frames:

    clip score = mean over sampled frames f of 100 * max(cos(E_img(f), E_txt(prompt)), 0)

The clamp is per pair, as the paper defines CLIPScore for one image and one caption; it
is NOT torchmetrics' `clip_score`, which averages the cosines of a batch first and clamps
the mean once (the two differ whenever some frames score below zero).

Frames and prompt go through the checkpoint's own processor (its tokenizer, truncating
the prompt to the tokenizer's max length, and its image processor); embeddings come from
`get_image_features` / `get_text_features` (the projected embeddings), cosine in float32.
The sampled frames of several clips share forwards of up to `batch_frames` frames.

Location: a local CLIPModel directory (`CLIPModel.from_pretrained`); the default,
openai/clip-vit-base-patch32, is a hub id resolved to a snapshot directory elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.score.base import Clip, ScoreError, Scorer
from pipeline.score.frames import MOST_FRAMES, mean_per_clip, sampled_frames

DEFAULT_CLIP = "openai/clip-vit-base-patch32"


@dataclass(frozen=True)
class ClipSettings:
    batch_frames: int = 64  # frames (or prompts) per forward, across clips
    most_frames: int = MOST_FRAMES  # frames sampled per clip

    def __post_init__(self):
        if self.batch_frames < 1 or self.most_frames < 1:
            raise ScoreError(f"clip settings must be positive, got {self}")


def _features(output: Any):
    """transformers < 5 returns the projected embeddings as a tensor; 5.x returns a
    BaseModelOutputWithPooling whose pooler_output holds them."""
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClipEncoder:
    """A CLIPModel with its processor: L2-normalised float32 embeddings of frames and
    prompts. Shared by the clip and aesthetic scorers."""

    def __init__(self, model, processor, device: str, settings: ClipSettings):
        self.model, self.processor = model, processor
        self.device, self.settings = device, settings
        self.dim: int = int(model.config.projection_dim)
        tokenizer = processor.tokenizer
        # A tokenizer saved without model_max_length reports a huge number; past the
        # model's positions the text model would fail, so cap at those too.
        self.max_tokens = min(
            int(tokenizer.model_max_length), int(model.config.text_config.max_position_embeddings)
        )

    def _chunks(self, items: Sequence) -> list[Sequence]:
        step = self.settings.batch_frames
        return [items[i : i + step] for i in range(0, len(items), step)]

    def images(self, frames: Sequence[np.ndarray]):
        """(N, D) float32 unit vectors, one per (H, W, 3) uint8 frame."""
        import torch

        out = []
        with torch.inference_mode():
            for chunk in self._chunks(frames):
                # channels_last stated, not guessed: a 3-pixel-high frame would look CHW.
                pixels = self.processor.image_processor(
                    images=list(chunk), return_tensors="pt", input_data_format="channels_last"
                )["pixel_values"].to(self.device, self.model.dtype)
                out.append(_features(self.model.get_image_features(pixel_values=pixels)))
        return _unit(torch.cat(out))

    def texts(self, prompts: Sequence[str]):
        """(N, D) float32 unit vectors, one per prompt (truncated to max_tokens)."""
        import torch

        out = []
        with torch.inference_mode():
            for chunk in self._chunks(prompts):
                tokens = self.processor.tokenizer(
                    list(chunk),
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                out.append(_features(self.model.get_text_features(**tokens)))
        return _unit(torch.cat(out))


def _unit(embeddings):
    import torch

    return torch.nn.functional.normalize(embeddings.float(), dim=-1)


def load_clip_encoder(location: str, device: str, settings: ClipSettings) -> ClipEncoder:
    """A CLIPModel directory -> ClipEncoder in eval mode on `device`, or ScoreError."""
    path = Path(location).expanduser()
    if not path.is_dir():
        raise ScoreError(
            f"CLIP model {location!r}: not a local directory (hub ids are resolved to a "
            "snapshot directory before scorers load)"
        )
    import torch
    from transformers import AutoProcessor, CLIPModel

    try:
        model = CLIPModel.from_pretrained(path)
        processor = AutoProcessor.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise ScoreError(f"CLIP model {location!r}: cannot load: {error}") from error
    if not (hasattr(processor, "tokenizer") and hasattr(processor, "image_processor")):
        raise ScoreError(f"CLIP model {location!r}: no tokenizer + image processor saved")
    # float32 whatever the saved dtype: scores must not move with how a checkpoint was saved.
    model = model.to(device=device, dtype=torch.float32).eval()
    return ClipEncoder(model, processor, device, settings)


class ClipScore:
    def __init__(self, encoder: ClipEncoder):
        self.encoder = encoder

    def score_batch(self, clips: Sequence[Clip]) -> list[float]:
        if not clips:
            return []
        frames, owners = sampled_frames(clips, self.encoder.settings.most_frames)
        prompts = list(dict.fromkeys(prompt for _clip, prompt in clips))  # each once
        text = self.encoder.texts(prompts)
        row = {prompt: i for i, prompt in enumerate(prompts)}
        per_frame_text = text[[row[clips[o][1]] for o in owners.tolist()]]
        cosines = (self.encoder.images(frames) * per_frame_text).sum(-1)
        per_pair = 100.0 * cosines.clamp(min=0.0)  # the paper's w * max(cos, 0), w = 100
        return mean_per_clip(per_pair.cpu().numpy(), owners, len(clips))


def load_clip(
    location: str | None, device: str = "cpu", settings: ClipSettings | None = None
) -> ClipScore:
    encoder = load_clip_encoder(location or DEFAULT_CLIP, device, settings or ClipSettings())
    return ClipScore(encoder)


CLIP = Scorer(
    name="clip",
    needs_checkpoint=True,
    description="CLIPScore: mean over 16 sampled frames of 100*max(cos(frame, prompt), 0)",
    load=load_clip,
    default_location=DEFAULT_CLIP,
    location_help="CLIP_DIR_OR_HUB_ID",
)
