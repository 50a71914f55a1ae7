"""The LAION aesthetic predictor (christophschuhmann/improved-aesthetic-predictor): an MLP
head on L2-normalised CLIP image embeddings, averaged over a clip's sampled frames.

    aesthetic = mean over sampled frames f of head(E_img(f) / |E_img(f)|)

Location, `--score aesthetic=LOCATION`:

    HEAD.safetensors            the head, on openai/clip-vit-large-patch14 (the CLIP the
                                LAION heads were trained on: embeddings of 768)
    CLIP::HEAD.safetensors      the head, on the CLIPModel CLIP (a directory or hub id)

"::" separates the two (it occurs in no path or hub id we take). The head must be a
safetensors file: the published heads are pickled torch .pth files, and unpickling runs
code, so convert once (`safetensors.torch.save_file(torch.load(pth), out)`).

The head's layout, as the improved-aesthetic-predictor's `MLP.layers` (D = the CLIP's
projection_dim; dropouts are identity at inference, and there is no activation):

    layers.0  Linear(D, 1024)   layers.1 Dropout(0.2)
    layers.2  Linear(1024, 128) layers.3 Dropout(0.2)
    layers.4  Linear(128, 64)   layers.5 Dropout(0.1)
    layers.6  Linear(64, 16)
    layers.7  Linear(16, 1)

so its state dict has exactly layers.{0,2,4,6,7}.{weight,bias}; any other file is
refused naming the keys and shapes expected and found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.score.base import Clip, ScoreError, Scorer
from pipeline.score.clip import ClipEncoder, ClipSettings, load_clip_encoder
from pipeline.score.frames import mean_per_clip, sampled_frames

DEFAULT_AESTHETIC_CLIP = "openai/clip-vit-large-patch14"
SEPARATOR = "::"
# (layer index, out features) of each Linear; in features: D, then the previous out.
HEAD_LINEARS = ((0, 1024), (2, 128), (4, 64), (6, 16), (7, 1))
HEAD_DROPOUTS = {1: 0.2, 3: 0.2, 5: 0.1}


@dataclass(frozen=True)
class AestheticLocation:
    clip: str  # CLIPModel directory or hub id
    head: str  # the head's .safetensors file


def split_location(location: str) -> AestheticLocation:
    """'HEAD.safetensors' or 'CLIP::HEAD.safetensors' -> AestheticLocation, or ScoreError."""
    parts = location.split(SEPARATOR)
    if len(parts) > 2 or not all(p.strip() for p in parts):
        raise ScoreError(
            f"aesthetic location {location!r}: expected HEAD.safetensors or "
            f"CLIP{SEPARATOR}HEAD.safetensors"
        )
    clip, head = (DEFAULT_AESTHETIC_CLIP, *parts) if len(parts) == 1 else parts
    if not head.endswith(".safetensors"):
        raise ScoreError(
            f"aesthetic head {head!r}: expected a .safetensors file (convert a .pth with "
            "safetensors.torch.save_file; pickles are not loaded)"
        )
    return AestheticLocation(clip.strip(), head.strip())


def expected_head_shapes(dim: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    inputs = dim
    for index, out in HEAD_LINEARS:
        shapes[f"layers.{index}.weight"] = (out, inputs)
        shapes[f"layers.{index}.bias"] = (out,)
        inputs = out
    return shapes


def check_head(tensors: dict, dim: int, name: str) -> None:
    """ScoreError naming what was expected and what was found, unless `tensors` is the
    head for CLIP embeddings of `dim`."""
    expected = expected_head_shapes(dim)
    found = {key: tuple(value.shape) for key, value in tensors.items()}
    if found == expected:
        return
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    problems += [
        f"{k} is {list(found[k])}, expected {list(shape)}"
        for k, shape in expected.items()
        if k in found and found[k] != shape
    ]
    wanted = ", ".join(f"{k} {list(s)}" for k, s in expected.items())
    got = ", ".join(f"{k} {list(s)}" for k, s in sorted(found.items())) or "nothing"
    raise ScoreError(
        f"aesthetic head {name!r} does not fit a CLIP with {dim}-dim embeddings: "
        f"{'; '.join(problems)}. Expected: {wanted}. Found: {got}"
    )


def build_head(dim: int):
    """The improved-aesthetic-predictor MLP (random weights) for embeddings of `dim`."""
    import torch

    layers: list[torch.nn.Module] = []
    inputs = dim
    for index, out in HEAD_LINEARS:
        while len(layers) < index:  # the dropouts between
            layers.append(torch.nn.Dropout(HEAD_DROPOUTS[len(layers)]))
        layers.append(torch.nn.Linear(inputs, out))
        inputs = out
    return torch.nn.Sequential(*layers)


def load_head(path: str, dim: int, device: str):
    """The head file -> the MLP in eval mode, float32, on `device`; or ScoreError."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not Path(path).expanduser().is_file():
        raise ScoreError(f"aesthetic head {path!r}: no such file")
    try:
        tensors = load_file(str(Path(path).expanduser()))
    except (OSError, SafetensorError) as error:
        raise ScoreError(f"aesthetic head {path!r}: not a safetensors file: {error}") from error
    check_head(tensors, dim, path)
    head = build_head(dim)
    # The file's keys are those of the predictor's `MLP.layers`: the Sequential's own.
    head.load_state_dict({k.removeprefix("layers."): v.float() for k, v in tensors.items()})
    return head.to(device=device, dtype=torch.float32).eval()


class AestheticScore:
    def __init__(self, encoder: ClipEncoder, head):
        self.encoder, self.head = encoder, head

    def score_batch(self, clips: Sequence[Clip]) -> list[float]:
        import torch

        if not clips:
            return []
        frames, owners = sampled_frames(clips, self.encoder.settings.most_frames)
        with torch.inference_mode():
            per_frame = self.head(self.encoder.images(frames)).squeeze(-1)
        return mean_per_clip(per_frame.cpu().numpy(), owners, len(clips))


def load_aesthetic(
    location: str | None, device: str = "cpu", settings: ClipSettings | None = None
) -> AestheticScore:
    if not location:
        raise ScoreError("aesthetic needs a head: --score aesthetic=[CLIP::]HEAD.safetensors")
    where = split_location(location)
    encoder = load_clip_encoder(where.clip, device, settings or ClipSettings())
    return AestheticScore(encoder, load_head(where.head, encoder.dim, device))


AESTHETIC = Scorer(
    name="aesthetic",
    needs_checkpoint=True,
    description="LAION aesthetic MLP on CLIP image embeddings, mean over 16 sampled frames",
    load=load_aesthetic,
    default_location=None,
    location_help="[CLIP::]HEAD.safetensors",
    check_location=split_location,
)
