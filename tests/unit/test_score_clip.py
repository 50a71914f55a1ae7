"""CLIPScore against an independent computation with transformers directly: per sampled
frame, per image-text pair, cosine of CLIPModel.forward's embeddings, clamped at 0, x100,
averaged (Hessel et al. 2021), on a tiny random-weight CLIP built locally."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.score import SCORERS, ScoreError
from pipeline.score.clip import ClipSettings, _features, load_clip
from tests.support.clip_checkpoint import reference_cosines, tiny_clip_dir

LONG = "a slow dolly shot through a foggy pine forest at dawn, " * 6  # ~330 bytes
PROMPTS = ["a cat", LONG, "猫 🐈 café\u0301 ½ Ω\u200b ﷽ \t\n", ""]
SIXTEEN_OF_40 = [0, 3, 5, 8, 10, 13, 16, 18, 21, 23, 26, 29, 31, 34, 36, 39]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A 32-wide model gains nothing from threads; on a busy 2-core machine their spin
    waits made each forward ~30x slower (measured: 2.6 s vs 0.09 s a batch)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clip_dir():
    return tiny_clip_dir()


@pytest.fixture(scope="module")
def reference(clip_dir):
    return reference_cosines(clip_dir)


def paper_score(cosines, frames: np.ndarray, prompt: str) -> float:
    """Mean over the sampled frames of 100 * max(cos, 0), one pair at a time."""
    assert len(frames) <= 16 or len(frames) == 40  # hand-worked indices: 40 frames only
    picked = frames if len(frames) <= 16 else frames[SIXTEEN_OF_40]
    return float(np.mean([100 * max(c, 0.0) for c in cosines(picked, prompt)]))


def clip_frames(count: int, seed: int, shape=(24, 40)) -> np.ndarray:
    """Distinct frames (noise, flat colours, gradients), not square: the processor resizes."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (count, *shape, 3), dtype=np.uint8)
    frames[1::3] = rng.integers(0, 256, (len(frames[1::3]), 1, 1, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, shape[1]).astype(np.uint8)[None, :, None]
    frames[2::3] = (ramp * rng.uniform(0.2, 1, (len(frames[2::3]), 1, 1, 3))).astype(np.uint8)
    return frames


@pytest.fixture(scope="module")
def scorer(clip_dir):
    return load_clip(str(clip_dir), "cpu", ClipSettings(batch_frames=7))  # chunks span clips


def test_the_long_prompt_is_past_the_tokenizer_length(clip_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(clip_dir)
    assert len(tokenizer(LONG).input_ids) > tokenizer.model_max_length == 77


@pytest.mark.parametrize("count", [5, 40])
def test_clip_score_is_the_papers_per_pair_mean(scorer, reference, count):
    clips = [(clip_frames(count, seed), prompt) for seed, prompt in enumerate(PROMPTS)]
    clips.append((clip_frames(count, 9), "a cat"))  # a prompt twice in one batch
    got = scorer.score_batch(clips)
    want = [paper_score(reference, frames, prompt) for frames, prompt in clips]
    assert got == pytest.approx(want, abs=1e-3)
    assert len(set(np.round(want, 3))) > 1  # the prompts and frames do move the score
    alone = [scorer.score_batch([clip])[0] for clip in clips]
    assert alone == pytest.approx(got, abs=1e-4)  # batching and padding change nothing


def test_a_40_frame_clip_scores_its_16_sampled_frames(scorer, reference):
    frames = clip_frames(40, 3)
    every = np.mean(100 * np.maximum(reference(frames, "a cat"), 0.0))
    got = scorer.score_batch([(frames, "a cat")])[0]
    assert got == pytest.approx(paper_score(reference, frames, "a cat"), abs=1e-3)
    assert abs(got - every) > 1e-2  # all 40 frames would give another score


def test_text_past_the_limit_is_truncated(scorer):
    frames = clip_frames(5, 4)
    one = scorer.score_batch([(frames, LONG), (frames, LONG + " and a red balloon")])
    assert one[0] == pytest.approx(one[1], abs=1e-5)


def test_the_clamp_is_per_frame_not_after_averaging(scorer, reference):
    """A clip whose frames score on both sides of 0: the paper's per-pair clamp averages
    max(cos, 0); torchmetrics' clip_score averages the cosines, then clamps once."""
    candidates = clip_frames(12, 5)
    for prompt in ["a dog on a skateboard", "", "zzz", "a cat", "猫 🐈"]:
        cosines = reference(candidates, prompt)
        if (cosines > 0).any() and (cosines < 0).any():
            break
    else:
        pytest.fail("no prompt with frames on both sides of cos = 0 among the candidates")
    # One frame above 0, the rest below: the mean cosine is pulled down by the negatives.
    order = np.argsort(cosines)
    keep = [order[-1], *order[: min(4, int((cosines < 0).sum()))]]
    clip = candidates[keep]
    got = scorer.score_batch([(clip, prompt)])[0]
    per_pair = float(np.mean(100 * np.maximum(cosines[keep], 0)))
    average_first = float(100 * max(cosines[keep].mean(), 0))
    assert got == pytest.approx(per_pair, abs=1e-3)
    assert got > average_first + 0.1


def test_features_take_a_tensor_or_a_model_output():
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    embeddings = torch.ones(2, 4)
    assert _features(embeddings) is embeddings
    assert _features(BaseModelOutputWithPooling(pooler_output=embeddings)) is embeddings


def test_loading_refuses_what_is_not_a_clip_directory(tmp_path):
    with pytest.raises(ScoreError, match="not a local directory"):
        SCORERS["clip"].load(str(tmp_path / "missing"), "cpu")
    with pytest.raises(ScoreError, match="openai/clip-vit-base-patch32"):
        SCORERS["clip"].load(None, "cpu")  # the default is a hub id: resolved elsewhere
    with pytest.raises(ScoreError, match="cannot load"):
        SCORERS["clip"].load(str(tmp_path), "cpu")
