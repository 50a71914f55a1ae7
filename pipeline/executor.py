"""The only module that talks to Ray: start or join a cluster, run planned batches on
render actors with a bounded number in flight, replace actors that die.

Plain actors fed planned batches (not Ray Data): batch composition must come from the
plan, a dead actor must be replaced rather than hang a fixed pool, and the ledger, not
Ray, is the checkpoint (see design.md, "Render stage").
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable

from pipeline.config import ClusterSettings
from pipeline.errors import ConfigError
from pipeline.plan import Batch
from pipeline.retry import RetryBook
from pipeline.worker import BatchWorker, WorkerSpec

# Errors that mean "the batch was lost with its process or node", not "the batch is bad".
_LOST = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "ObjectLostError",
         "OwnerDiedError", "NodeDiedError", "WorkerCrashedError", "RayTaskError")


def init_ray(cluster: ClusterSettings) -> None:
    """Join --address / RAY_ADDRESS, or start a local Ray that listens on loopback only."""
    import ray

    if ray.is_initialized():
        return
    address = cluster.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    # Measured (Ray 2.60): with this set, a local Ray binds to 127.0.0.1 only.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    needed = cluster.actors * cluster.cpus_per_actor
    ray.init(
        num_cpus=max(os.cpu_count() or 1, int(needed + 0.999)),
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


class RenderActor:
    """Holds one loaded pipeline for the whole run (loaded once, in the constructor)."""

    def __init__(self, spec: WorkerSpec):
        self.worker = BatchWorker(spec)

    def ready(self) -> int:
        return os.getpid()

    def process(self, batch: Batch) -> list[dict]:
        return self.worker.process(batch)


class Dispatcher:
    """Feeds batches to actors, at most `batches_in_flight` each; collects final rows."""

    def __init__(self, cluster: ClusterSettings, book: RetryBook, on_final: Callable, on_tick):
        self.cluster = cluster
        self.book = book
        self.on_final = on_final  # called with final ledger rows as they arrive
        self.on_tick = on_tick  # called about once a second (flush, heartbeat)

    def _new_actor(self, spec: WorkerSpec):
        import ray

        actor_class = ray.remote(RenderActor).options(
            num_cpus=self.cluster.cpus_per_actor,
            num_gpus=self.cluster.gpus_per_actor,
            max_concurrency=2,  # one batch renders while the previous one encodes
            max_restarts=0,  # replaced by the dispatcher, which knows what was in flight
        )
        return actor_class.remote(spec)

    def _start_actors(self, spec: WorkerSpec) -> list:
        import ray

        actors = [self._new_actor(spec) for _ in range(self.cluster.actors)]
        try:
            ray.get([actor.ready.remote() for actor in actors])
        except ray.exceptions.RayActorError as exc:
            raise ConfigError(f"render actor failed to start: {exc}") from exc
        return actors

    def run(self, spec: WorkerSpec, batches: Iterable[Batch]) -> None:
        import ray

        actors = self._start_actors(spec)
        source = iter(batches)
        retries: deque[Batch] = deque()
        in_flight: dict = {}  # ObjectRef -> (actor slot, actor, batch)
        load = [0] * len(actors)
        per_actor = max(1, self.cluster.batches_in_flight)
        while True:
            for slot, actor in enumerate(actors):
                while load[slot] < per_actor:
                    batch = retries.popleft() if retries else next(source, None)
                    if batch is None:
                        break
                    in_flight[actor.process.remote(batch)] = (slot, actor, batch)
                    load[slot] += 1
            if not in_flight:
                return
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            self.on_tick()
            for ref in done:
                slot, actor, batch = in_flight.pop(ref)
                load[slot] -= 1
                try:
                    final, again = self.book.on_results(batch, ray.get(ref))
                except Exception as exc:  # noqa: BLE001 - only lost-batch errors are handled
                    if type(exc).__name__ not in _LOST and not isinstance(
                        exc, ray.exceptions.RayError
                    ):
                        raise
                    final, again = self.book.on_crash(batch, _describe(exc))
                    if actors[slot] is actor and _is_dead(exc):
                        ray.kill(actor, no_restart=True)
                        actors[slot] = self._new_actor(spec)
                self.on_final(final)
                retries.extend(again)


def _is_dead(exc: Exception) -> bool:
    import ray

    return isinstance(exc, ray.exceptions.RayActorError)


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]
