"""The LAION aesthetic scorer against an independent torch computation, and the refusal
of head files that do not fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from pipeline.score import SCORERS, ScoreError
from pipeline.score.aesthetic import DEFAULT_AESTHETIC_CLIP, load_aesthetic, split_location
from pipeline.score.clip import ClipSettings
from tests.support.clip_checkpoint import tiny_aesthetic_head, tiny_clip_dir

DIM = 16  # the tiny CLIP's projection_dim
SIXTEEN_OF_40 = [0, 3, 5, 8, 10, 13, 16, 18, 21, 23, 26, 29, 31, 34, 36, 39]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A 32-wide model gains nothing from threads (see test_score_clip.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    return tiny_aesthetic_head(tmp_path_factory.mktemp("head") / "head.safetensors", DIM)


@pytest.fixture(scope="module")
def reference():
    """CLIPModel.forward's normalised image_embeds, then the head's five Linear layers as
    plain matmuls (dropouts are identity at inference), averaged over the frames."""
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(tiny_clip_dir()).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip_dir())
    return lambda frames, head_path: _reference(model, processor, frames, head_path)


def _reference(model, processor, frames: np.ndarray, head_path) -> float:
    pixels = processor.image_processor(
        images=[Image.fromarray(f) for f in frames], return_tensors="pt"
    )["pixel_values"]
    ids = torch.zeros((1, 2), dtype=torch.long)  # forward wants a text; unused here
    with torch.no_grad():
        x = model(input_ids=ids, pixel_values=pixels).image_embeds.double()
    weights = {k: v.double() for k, v in load_file(str(head_path)).items()}
    for index in (0, 2, 4, 6, 7):
        x = x @ weights[f"layers.{index}.weight"].T + weights[f"layers.{index}.bias"]
    return float(x.mean())


def test_aesthetic_is_the_head_on_normalised_embeddings(head, reference):
    rng = np.random.default_rng(0)
    clips = [(rng.integers(0, 256, (n, 20, 36, 3), dtype=np.uint8), "p") for n in (5, 40, 2)]
    scorer = SCORERS["aesthetic"].load(f"{tiny_clip_dir()}::{head}", "cpu")
    got = scorer.score_batch(clips)
    want = [reference(f if len(f) <= 16 else f[SIXTEEN_OF_40], head) for f, _ in clips]
    assert got == pytest.approx(want, abs=1e-4)
    assert len(set(np.round(want, 4))) == 3
    # all 40 frames would give another mean; batches of 3 frames span clips and agree
    assert abs(got[1] - reference(clips[1][0], head)) > 1e-4
    again = load_aesthetic(f"{tiny_clip_dir()}::{head}", "cpu", ClipSettings(batch_frames=3))
    assert again.score_batch(clips) == pytest.approx(got, abs=1e-5)


def test_another_head_gives_other_scores(head, tmp_path):
    other = tiny_aesthetic_head(tmp_path / "other.safetensors", DIM, seed=1)
    clip = (np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8), "p")
    one, two = (
        SCORERS["aesthetic"].load(f"{tiny_clip_dir()}::{h}", "cpu").score_batch([clip])[0]
        for h in (head, other)
    )
    assert abs(one - two) > 1e-4


def test_the_location_names_a_head_and_optionally_a_clip():
    assert split_location("/h/a.safetensors").clip == DEFAULT_AESTHETIC_CLIP
    assert split_location("/c/clip::/h/a.safetensors").clip == "/c/clip"
    assert split_location("/c/clip::/h/a.safetensors").head == "/h/a.safetensors"


def _rewrite(head, path, change) -> str:
    tensors = load_file(str(head))
    change(tensors)
    save_file(tensors, str(path))
    return f"{tiny_clip_dir()}::{path}"


def test_a_head_with_other_keys_is_refused_naming_them(head, tmp_path):
    def prefixed(tensors):  # a state dict saved from a wrapper: "model.layers.0.weight"
        for key in list(tensors):
            tensors["model." + key] = tensors.pop(key)

    location = _rewrite(head, tmp_path / "prefixed.safetensors", prefixed)
    with pytest.raises(ScoreError) as caught:
        SCORERS["aesthetic"].load(location, "cpu")
    message = str(caught.value)
    assert "missing layers.0.weight" in message and "unexpected model.layers.7.bias" in message
    assert "Expected: layers.0.weight [1024, 16]" in message

    location = _rewrite(head, tmp_path / "short.safetensors", lambda t: t.pop("layers.7.bias"))
    with pytest.raises(ScoreError, match="missing layers.7.bias"):
        SCORERS["aesthetic"].load(location, "cpu")


def test_a_head_for_another_clip_is_refused_naming_the_shapes(tmp_path):
    big = tiny_aesthetic_head(tmp_path / "l14.safetensors", 768)  # a ViT-L/14 head
    with pytest.raises(ScoreError) as caught:
        SCORERS["aesthetic"].load(f"{tiny_clip_dir()}::{big}", "cpu")
    message = str(caught.value)
    assert "16-dim embeddings" in message
    assert "layers.0.weight is [1024, 768], expected [1024, 16]" in message


def test_files_that_are_no_head_are_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ScoreError, match="not a safetensors file"):
        SCORERS["aesthetic"].load(f"{tiny_clip_dir()}::{junk}", "cpu")
    with pytest.raises(ScoreError, match="no such file"):
        SCORERS["aesthetic"].load(f"{tiny_clip_dir()}::{tmp_path / 'x.safetensors'}", "cpu")
    with pytest.raises(ScoreError, match="needs a head"):
        SCORERS["aesthetic"].load(None, "cpu")
