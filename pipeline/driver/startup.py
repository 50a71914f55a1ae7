"""Start-up overlap: Ray and the render actors start in the main thread while a helper
thread composes the planned batches.

By the time this runs, the job has read and validated the manifest, claimed the run dir
(job.json), computed the keys, taken the lock and found items pending (driver/job.py): a
bad manifest or a drifted run dir exits 2 in a second, and a finished run dir never starts
Ray. What is left to overlap with Ray's start (5-30 s here, which cannot be cut short) is
the batch composition, the larger part of planning for big manifests (a million items:
keys ~1 s, composition ~5 s, see bench/README.md).

The early actors (for the first model to render: the run's `--model` when it has pending
items) take their Ray resources and import torch/diffusers; they load weights only in
their first `ready()`, which the dispatcher calls once the composition exists. With a
manifest `model` column the same actors then load each further model in turn.

A signal during start-up interrupts it as Ctrl-C always did: KeyboardInterrupt, exit 130,
nothing rendered; the Ray this start began is shut down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from pipeline.actor.faults import Faults
from pipeline.config import RunConfig
from pipeline.plan.planner import Plan
from pipeline.rundir.layout import RunDir


@dataclass(frozen=True)
class StartedUp:
    """What start-up hands the render step: the early actors and where the time went."""

    early: EarlyStart
    ray_and_actors_s: float
    composition_s: float

    def timings(self) -> dict:
        """For summary.json's `startup`: wall seconds of the two overlapped parts."""
        return {
            "ray_and_actors_s": round(self.ray_and_actors_s, 3),
            "composition_s": round(self.composition_s, 3),
            # render actor processes this run started (early, per model, replacements)
            "actors_started": self.early.actors_started,
            # and those it took warm from an earlier job of the process (warm_actors.py)
            "actors_warm": self.early.actors_warm,
        }


def start_up(
    config: RunConfig, run: RunDir, faults: Faults, stop, plan: Plan, todo: pa.Array
) -> StartedUp:
    """Ray and the early actors here, `plan.composition` in a helper thread. `stop`
    (StopControl) is armed once both are done: from then on a signal means a clean stop
    (exit 4). `todo`: the pending keys, which name the first model and bound the actors."""
    # A batch holds at most batch_size items: never more early actors than batches.
    count = min(config.cluster.actors, -(-len(todo) // config.render.batch_size))
    first_model = plan.pending_models(todo, config.render.model)[0]
    early = EarlyStart(config, run, faults, first_model, count)
    with ThreadPoolExecutor(1, thread_name_prefix="compose") as pool:
        composed = pool.submit(_timed, lambda: plan.composition)
        try:
            started = time.monotonic()
            early.start(cancelled=lambda: composed.done() and composed.exception() is not None)
            stop.install()  # again: over the SIGTERM handler ray.init installs
            ray_s = time.monotonic() - started
            composition_s = composed.result()
            stop.arm()
        except BaseException:
            early.release(shutdown=True)  # nothing rendered, nothing left running
            raise
    return StartedUp(early, ray_s, composition_s)


def _timed(work: Callable) -> float:
    started = time.monotonic()
    work()
    return time.monotonic() - started


class EarlyStart:
    """Starts Ray and `count` render actors (not yet loaded) for the first model to render,
    in the driver's main thread, while another thread composes the planned batches.

    Ray must start in a thread that lives as long as the driver: it ties gcs_server and the
    raylet to the *thread* that started them (PR_SET_PDEATHSIG fires when that thread
    exits). Measured: a Ray started in a helper thread lost its GCS when the thread ended."""

    def __init__(self, config: RunConfig, run: RunDir, faults: Faults, model: str, count: int):
        self._config = config
        self._run = run
        self._faults = faults
        self._model = model
        self._count = count
        self._actors: list = []
        self._started_ray = False
        self.actors_started = 0  # here, and added by the render step's dispatchers
        self.actors_warm = 0

    def start(self, cancelled: Callable[[], bool]) -> None:
        """Start (or join) Ray, then the actors unless `cancelled()` (composition failed)."""
        from pipeline.driver.executor import init_ray, ray_running, render_actor

        self._started_ray = not ray_running()
        init_ray(self._config.cluster)
        if cancelled():
            return
        spec = self.spec_for(self._model)
        taken = [
            render_actor(self._config.cluster, spec, load_now=False) for _ in range(self._count)
        ]
        self._actors = [actor for actor, _ in taken]
        self.actors_started = sum(started for _, started in taken)
        self.actors_warm = len(taken) - self.actors_started

    def spec_for(self, model: str):
        from pipeline.actor.worker import WorkerSpec
        from pipeline.models import resolve_model

        return WorkerSpec(
            model=resolve_model(model).pinned_spec,  # every actor, every node: this commit
            render=self._config.render,
            encode=self._config.encode,
            run=self._run,
            encode_workers=self._config.cluster.encode_workers,
            faults=self._faults,
            qc=self._config.qc,
            media=self._config.media,
        )

    def take_actors(self) -> list:
        """The early actors, handed out once: the render step loads each model in them."""
        actors, self._actors = self._actors, []
        return actors

    def release(self, shutdown: bool, also=(), keep: bool = False) -> None:
        """Kill the actors nobody took and `also` (those the render step kept to the end),
        or with `keep` (rendering finished; nothing else needs their CPUs) keep `also`
        warm for this process's next job where that is asked for (warm_actors.py); with
        `shutdown` (start-up failed or was interrupted) also stop a Ray this start began,
        so nothing is left running."""
        from pipeline.driver import warm_actors
        from pipeline.driver.executor import kill_actor

        also = warm_actors.keep(list(also), self._config.cluster) if keep else also
        for actor in [*self._actors, *also]:
            kill_actor(actor)
        self._actors = []
        if shutdown and self._started_ray:
            from pipeline.driver.executor import shutdown_ray

            shutdown_ray()
