"""The renderer and the per-batch worker, in-process without Ray."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pipeline.actor.faults import Faults
from pipeline.actor.renderer import Renderer
from pipeline.actor.worker import BatchWorker, WorkerSpec
from pipeline.config import EncodeSettings, RenderSettings
from pipeline.errors import RenderError
from pipeline.plan.batches import Batch
from pipeline.rundir.layout import RunDir
from tests.support.batchmates_model import ensure_batchmates_model
from tests.support.items import make_item as _item


@pytest.fixture(scope="module")
def renderers():
    return {
        "cached": Renderer("tiny", RenderSettings(embedding_cache=16)),
        "plain": Renderer("tiny", RenderSettings(embedding_cache=0)),
    }


def test_embedding_cache_changes_no_pixels(renderers):
    # Many seeds per prompt, a negative prompt, and a repeat that hits the cache.
    batches = [
        Batch(tuple(_item("a cat", s, negative_prompt="blurry") for s in range(4)), 4),
        Batch((_item("a cat", 9), _item("a dog", 9), _item("a cat", 10)), 4),
    ]
    for batch in batches:
        cached = renderers["cached"].render(batch)
        plain = renderers["plain"].render(batch)
        for a, b in zip(cached, plain):
            assert a.dtype == np.uint8 and a.shape == (9, 64, 64, 3)
            assert np.array_equal(a, b)
    assert renderers["cached"].cache.hits > 0


def test_seed_modulo_2_32_renders_the_same_video(renderers):
    big = 12345 + 7 * 2**32
    a, b = renderers["cached"].render(Batch((_item("x", 12345), _item("x", big, key="k2")), 4))
    assert np.array_equal(a, b)


def test_nan_output_is_a_fatal_item_error():
    renderer = Renderer("tiny", RenderSettings(), Faults.parse(["nan:bad"]))
    good, bad = renderer.render(Batch((_item("good", 1), _item("bad", 2)), 2))
    assert isinstance(good, np.ndarray)
    assert isinstance(bad, RenderError) and not bad.retriable and "NaN" in str(bad)


def test_null_model_is_deterministic_and_cheap():
    renderer = Renderer("null", RenderSettings(model="null"))
    batch = Batch((_item("p", 1, model="null"), _item("p", 2, model="null")), 4)
    first, second = renderer.render(batch), renderer.render(batch)
    assert np.array_equal(first[0], second[0]) and not np.array_equal(first[0], first[1])


def test_overlapped_batches_give_the_same_results_as_sequential(tmp_path):
    """Two batches in flight on one worker (render one, encode the other) change nothing."""
    spec = WorkerSpec("tiny", RenderSettings(), EncodeSettings(), RunDir(str(tmp_path / "run")))
    worker = BatchWorker(spec)
    batches = [Batch(tuple(_item(f"p{b}", s) for s in range(3)), 4) for b in range(3)]
    sequential = [worker.process(b) for b in batches]
    with ThreadPoolExecutor(2) as pool:
        overlapped = list(pool.map(worker.process, batches))
    for rows_a, rows_b in zip(sequential, overlapped):
        assert [r["frames_sha256"] for r in rows_a] == [r["frames_sha256"] for r in rows_b]
        assert [r["sha256"] for r in rows_a] == [r["sha256"] for r in rows_b]
        assert all(r["status"] == "ok" for r in rows_a + rows_b)


def test_a_render_actor_loads_the_next_model_in_place(tmp_path):
    """A run with several models keeps its actors: `ready(spec)` swaps the pipeline, and
    the same spec again keeps the loaded one; another job's spec gets a worker of its own."""
    from pipeline.driver.executor import RenderActor

    run, other_run = RunDir(str(tmp_path / "run")), RunDir(str(tmp_path / "other"))
    null = WorkerSpec("null", RenderSettings(model="null"), EncodeSettings(), run)
    tiny = WorkerSpec("tiny", RenderSettings(), EncodeSettings(), run)
    actor = RenderActor(null, load_now=False)
    actor.ready()
    first = actor.worker
    actor.ready(null)
    assert actor.worker is first  # same spec: nothing reloaded
    actor.ready(WorkerSpec("null", RenderSettings(model="null"), EncodeSettings(), other_run))
    assert actor.worker is not first  # another job's (warm_actors.py): its own worker
    first = actor.worker
    actor.ready(tiny)
    assert actor.worker is not first and actor.worker.renderer.ref.kind != "null"
    assert first._encoders._shutdown  # the old worker let go of its threads
    rows = actor.process(Batch((_item("p", 1), _item("q", 2)), 2))
    assert [row["status"] for row in rows] == ["ok", "ok"]


def test_each_render_pins_the_thread_count_in_the_thread_that_renders():
    """torch's thread count is per OS thread, and an actor renders on a pool of threads,
    one of which an earlier job (warm_actors.py) may have left at its own --threads. On the
    batch-mates model the count moves pixels: each render pins it where it runs."""
    import torch

    model = str(ensure_batchmates_model())
    batch = Batch((_item("p", 1, model=model), _item("q", 2, model=model)), 2)
    renderer = Renderer(model, RenderSettings(model=model, batch_size=2, threads=2))
    here = renderer.render(batch)
    one = Renderer(model, RenderSettings(model=model, batch_size=2, threads=1)).render(batch)
    assert not all(np.array_equal(a, b) for a, b in zip(here, one))  # the count matters

    def in_a_thread_left_at_one():
        torch.set_num_threads(1)
        return renderer.render(batch)

    with ThreadPoolExecutor(1) as pool:
        there = pool.submit(in_a_thread_left_at_one).result()
    assert all(np.array_equal(a, b) for a, b in zip(here, there))
