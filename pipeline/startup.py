"""Start-up overlap: Ray and the render actors start while another thread plans the
manifest, claims the run dir and takes the lock.

The manifest is read and validated (and the run dir checked writable) *before* Ray starts:
a bad manifest then exits 2 in a second with nothing started, as the early-exit tests
require 20 times in a row; with validation inside the overlap it exited only after Ray's
start (5-30 s here), which cannot be cut short. Planning is the larger part for big
manifests (a million rows: validate ~2.5 s, plan ~5 s, see bench/README.md).

The early actors (for the run's default `--model`) take their Ray resources and import
torch/diffusers; they load weights only in their first `ready()`, which the dispatcher
calls once the plan exists. Actors for another model (a manifest `model` column) start
later, as before.

A signal during start-up (before the first batch could be dispatched) interrupts it as
Ctrl-C always did: KeyboardInterrupt, exit 130, nothing rendered or written; the preparing
thread stops after its current step (it cannot be interrupted inside an Arrow read).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pipeline.config import RunConfig
from pipeline.faults import Faults
from pipeline.storage import RunDir


class Cancel(threading.Event):
    def check(self) -> None:
        if self.is_set():
            raise KeyboardInterrupt("start-up cancelled")


def start_up(config: RunConfig, run: RunDir, faults: Faults, stop, prepare: Callable):
    """`prepare(cancel)` in a helper thread while Ray and the actors start here; returns
    (EarlyStart, what prepare returned, start-up seconds). `stop` (StopControl) is armed
    once both are done: from then on a signal means a clean stop (exit 4)."""
    early = EarlyStart(config, run, faults)
    cancel = Cancel()
    stop.install()  # before arming, a signal raises KeyboardInterrupt (as without it)
    with ThreadPoolExecutor(1, thread_name_prefix="prepare") as pool:
        prepared = pool.submit(_timed, prepare, cancel)

        def failed() -> bool:
            return cancel.is_set() or (prepared.done() and prepared.exception() is not None)

        try:
            started = time.monotonic()
            early.start(cancelled=failed)
            stop.install()  # again: over the SIGTERM handler ray.init installs
            ray_s = time.monotonic() - started
            result, prepare_s = prepared.result()
            stop.arm()
        except BaseException:
            cancel.set()  # the thread stops after its current step; `with` waits for it
            prepared.add_done_callback(_release_lock)
            early.release(shutdown=True)  # nothing rendered, nothing left running
            stop.restore()
            raise
    return early, result, {"ray_and_actors_s": round(ray_s, 3), "prepare_s": round(prepare_s, 3)}


def _timed(prepare: Callable, cancel: Cancel):
    started = time.monotonic()
    return prepare(cancel), time.monotonic() - started


def _release_lock(prepared) -> None:
    """A start-up that failed after the other thread took the lock gives it back."""
    if not prepared.cancelled() and prepared.exception() is None:
        prepared.result()[0][-1].release()


class EarlyStart:
    """Starts Ray and `--actors` render actors (not yet loaded) in the driver's main thread,
    while another thread reads, validates and plans the manifest.

    Ray must start in a thread that lives as long as the driver: it ties gcs_server and the
    raylet to the *thread* that started them (PR_SET_PDEATHSIG fires when that thread
    exits). Measured: a Ray started in a helper thread lost its GCS when the thread ended."""

    def __init__(self, config: RunConfig, run: RunDir, faults: Faults):
        self._config = config
        self._run = run
        self._faults = faults
        self._actors: list = []
        self._started_ray = False

    def start(self, cancelled: Callable[[], bool]) -> None:
        """Start (or join) Ray, then the actors unless `cancelled()` (validation failed)."""
        from pipeline.executor import init_ray, new_render_actor, ray_running

        self._started_ray = not ray_running()
        init_ray(self._config.cluster)
        if cancelled():
            return
        spec = self.spec_for(self._config.render.model)
        self._actors = [
            new_render_actor(self._config.cluster, spec, load_now=False)
            for _ in range(self._config.cluster.actors)
        ]

    def spec_for(self, model: str):
        from pipeline.models import resolve_model
        from pipeline.worker import WorkerSpec

        return WorkerSpec(
            model=resolve_model(model).pinned_spec,  # every actor, every node: this commit
            render=self._config.render,
            encode=self._config.encode,
            run=self._run,
            encode_workers=self._config.cluster.encode_workers,
            faults=self._faults,
            qc=self._config.qc,
        )

    def take_actors(self, model: str) -> list:
        """The early actors, if they are for `model` (each is handed out once); else none,
        and the early ones are killed so their resources go to this model's actors."""
        if self.spec_for(model).model != self.spec_for(self._config.render.model).model:
            self.release(shutdown=False)
            return []
        actors, self._actors = self._actors, []
        return actors

    def release(self, shutdown: bool) -> None:
        """Kill the actors nobody took; with `shutdown` (validation failed, nothing to
        render) also stop a Ray this start began, so nothing is left running."""
        from pipeline.executor import kill_actor

        for actor in self._actors:
            kill_actor(actor)
        self._actors = []
        if shutdown and self._started_ray:
            from pipeline.executor import shutdown_ray

            shutdown_ray()


def warm_imports(model: str) -> None:
    """What an early actor does before it may load weights: the libraries' imports."""
    from pipeline.models import resolve_model

    if resolve_model(model).kind == "null":
        return
    import torch  # noqa: F401
    from diffusers import DiffusionPipeline  # noqa: F401
