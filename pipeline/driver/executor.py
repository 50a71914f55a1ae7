"""The only module that talks to Ray: start or join a cluster, run planned batches on
render actors with a bounded number in flight, replace actors that die.

Plain actors fed planned batches (not Ray Data): batch composition must come from the
plan, a dead actor must be replaced rather than hang a fixed pool, and the ledger, not
Ray, is the checkpoint (see design.md, "Render stage").
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from pipeline.actor.worker import BatchWorker, WorkerSpec
from pipeline.config import ClusterSettings
from pipeline.driver.retry import RetryBook
from pipeline.errors import ConfigError, PromptreelError
from pipeline.plan.batches import Batch

# Errors that mean "the batch was lost with its process or node", not "the batch is bad".
_LOST = (
    "RayActorError",
    "ActorDiedError",
    "ActorUnavailableError",
    "ObjectLostError",
    "OwnerDiedError",
    "NodeDiedError",
    "WorkerCrashedError",
    "RayTaskError",
)


def init_ray(cluster: ClusterSettings) -> None:
    """Join --address / RAY_ADDRESS, or start a local Ray that listens on loopback only."""
    address = cluster.address or os.environ.get("RAY_ADDRESS")
    if not address:
        # Measured (Ray 2.60): with this set before Ray is imported, a local Ray binds and
        # talks on 127.0.0.1 only. Joining a real cluster must not set it.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports off this machine
    import ray

    if ray.is_initialized():
        return
    # Registered after Ray's own exit hook, so it runs first: Ray's sleeps 0.5 s before
    # shutting down "for log messages to finish printing", and with log_to_driver=False
    # there are none (measured: a CLI run exits 0.5 s sooner, same teardown).
    atexit.unregister(shutdown_ray)  # once, however many times a process starts Ray
    atexit.register(shutdown_ray)
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    from pipeline.driver.ray_lifetime import tied_to_this_process

    needed = cluster.actors * cluster.cpus_per_actor
    with tied_to_this_process():  # its agents would outlive a SIGKILLed driver
        ray.init(
            # "local": always a new Ray. With no address, ray.init() would join whatever
            # cluster the last `ray start` on this machine recorded in /tmp/ray.
            address="local",
            num_cpus=max(os.cpu_count() or 1, int(needed + 0.999)),
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )


def ray_running() -> bool:
    import ray

    return ray.is_initialized()


def shutdown_ray() -> None:
    import ray

    ray.shutdown()


def passive_openmp() -> None:
    """A render actor's OpenMP threads sleep while they wait instead of spinning (unless
    the environment says otherwise). Actors share a machine's cores with each other and with
    their encodes, and a spinning thread holds a core that a thread with work needs.
    Measured on 2 cores, 512 tiny-Wan requests (bench/README.md): two actors 34-35 s passive
    vs 36 s spinning; with another process busy on one core, 58-68 s vs 68-80 s (one actor:
    48-52 vs 55-57). Scheduling only: the same pixels. libgomp reads it when torch loads."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class RenderActor:
    """Holds one loaded pipeline at a time (loaded in the constructor, or with
    `load_now=False` in the first `ready()`: an actor started before the batches were
    composed only imports its libraries; see pipeline/driver/startup.py). A run with
    several models keeps its actors: `ready(spec)` swaps the pipeline for the next model,
    which on a cluster spares a process start and the libraries' import per model (and
    kept warm, for the next job's: pipeline/driver/warm_actors.py)."""

    def __init__(self, spec: WorkerSpec, load_now: bool = True):
        passive_openmp()  # before this process imports torch
        self.spec = spec
        self.worker = BatchWorker(spec) if load_now else None
        self._loading = threading.Lock()
        if not load_now:
            from pipeline.actor.renderer import warm_imports

            warm_imports(spec.model)

    def ready(self, spec: WorkerSpec | None = None) -> int:
        with self._loading:
            spec = spec or self.spec
            if self.worker is None or self.worker.spec != spec:
                if self.worker is not None:
                    self.worker.close()  # the old weights go before the new ones load
                    self.worker = None
                    release_memory()
                self.spec = spec
                self.worker = BatchWorker(spec)
        return os.getpid()

    def process(self, batch: Batch) -> list[dict]:
        return self.worker.process(batch)

    def ping(self) -> int:
        return os.getpid()


def release_memory() -> None:
    """Give a dropped pipeline's memory back (host, and the GPU's cache when there is one)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")  # the null model never imports it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class _Slot:
    """One render actor: starting or loading (ready_ref set) or ready; what it has in
    flight."""

    def __init__(self, actor, spec: WorkerSpec, reused: bool = False):
        self.actor = actor
        self.ready_ref = actor.ready.remote(spec)
        self.reused = reused  # kept from the previous model: its death is not a bad start
        self.load = 0
        self.exclusive = False  # running a retry alone, so a crash names its culprit
        self.progress_at = time.monotonic()  # last dispatch to an idle actor, or result


class _Feed:
    """Batches to run: retries first, then the plan's batches (with one-batch lookahead)."""

    def __init__(self, batches: Iterable[Batch]):
        self.retries: deque[Batch] = deque()
        self._source = iter(batches)
        self._next = next(self._source, None)

    def empty(self) -> bool:
        return not self.retries and self._next is None

    def take_for(self, slot: _Slot, per_actor: int) -> tuple[Batch, bool] | None:
        """The next batch for `slot`, and whether it must run alone; None if none fits."""
        if slot.ready_ref is not None or slot.exclusive or slot.load >= per_actor:
            return None
        if self.retries:
            # A retried batch runs alone on its actor: if that actor dies, the batch is the
            # only one charged an attempt, so an innocent item is never quarantined.
            return (self.retries.popleft(), True) if slot.load == 0 else None
        if self._next is None:
            return None
        batch, self._next = self._next, next(self._source, None)
        return batch, False


class Dispatcher:
    """Feeds batches to actors, at most `batches_in_flight` each; collects final rows.

    Actors start in the background and get work once ready; one that dies is replaced,
    and the run goes on with the others while the replacement starts (or waits for a
    node: after a node is lost there may be no room for it, and the rest still finish).
    """

    start_timeout_s = 1800.0  # no actor ready and nothing in flight for this long: give up

    def __init__(
        self, cluster: ClusterSettings, book: RetryBook, on_final: Callable, on_tick, gate=None
    ):
        self.cluster = cluster
        self.book = book
        self.on_final = on_final  # called with final ledger rows as they arrive
        self.on_tick = on_tick  # called about once a second (flush, heartbeat)
        # When a batch may start, and when to stop (pipeline/driver/stopping.py: deadline, signal).
        self.gate = gate or _AlwaysOpen()
        self.actors_started = 0  # new processes, replacements included (summary.json)
        self.actors_warm = 0  # taken kept from an earlier job of this process

    def _new_actor(self, spec: WorkerSpec):
        actor, started = render_actor(self.cluster, spec)
        self.actors_started += started
        self.actors_warm += not started
        return actor

    def run(self, spec: WorkerSpec, batches: Iterable[Batch], actors=(), most: int = 0) -> list:
        """Render `batches` on `actors` (started earlier, or kept from the previous model)
        plus new ones up to `--actors`, or `most` when that is fewer (the batch count:
        an actor without a batch would only load weights). Returns the actors still ready
        when every batch is done, for the next model; on an error or a deadline's
        abandon they are killed."""
        import ray

        wanted = min(self.cluster.actors, most) if most else self.cluster.actors
        slots = [_Slot(actor, spec, reused=True) for actor in actors]
        slots += [_Slot(self._new_actor(spec), spec) for _ in range(max(1, wanted) - len(slots))]
        feed = _Feed(batches)
        in_flight: dict = {}  # ObjectRef -> (slot, batch)
        state = {"ever_ready": False, "start_failures": 0, "idle_since": time.monotonic()}
        kept: list = []
        try:
            while True:
                self._dispatch(slots, feed, in_flight)
                if not in_flight and (feed.empty() or self.gate.stopping):
                    # a stop leaves the rest pending, for a resume
                    kept = [slot.actor for slot in slots if slot.ready_ref is None]
                    return kept
                if self.gate.abandon_due():
                    return []  # the finally kills the actors; their batches stay pending
                starting = {s.ready_ref: s for s in slots if s.ready_ref is not None}
                done, _ = ray.wait([*in_flight, *starting], num_returns=1, timeout=1.0)
                self.on_tick()
                for ref in done:
                    if ref in starting:
                        self._on_ready(spec, slots, starting[ref], state)
                    else:
                        self._on_done(spec, slots, feed, *in_flight.pop(ref), ref)
                self._check_stalled(slots, in_flight, state)
                self._kill_hung(slots)
        finally:
            for slot in slots:  # free their CPUs/GPUs now, also on an interrupt
                if slot.actor not in kept:
                    _kill(slot.actor)

    def _dispatch(self, slots, feed: _Feed, in_flight: dict) -> None:
        """Round-robin, one batch per ready actor per pass, up to `batches_in_flight` each."""
        per_actor = max(1, self.cluster.batches_in_flight)
        placed = True
        while placed:
            placed = False
            for slot in slots:
                if slot.ready_ref is None and not self.gate.admit(slot.load):
                    continue
                taken = feed.take_for(slot, per_actor)
                if taken is not None:
                    batch, alone = taken
                    in_flight[slot.actor.process.remote(batch)] = (slot, batch)
                    self.gate.dispatched(batch)
                    if slot.load == 0:
                        slot.progress_at = time.monotonic()
                    slot.load += 1
                    slot.exclusive = alone
                    placed = True

    def _on_ready(self, spec, slots, slot, state) -> None:
        import ray

        try:
            ray.get(slot.ready_ref)
        except ray.exceptions.RayError as exc:
            if slot.reused and _is_dead(exc):  # lost since the last model: not a bad start
                self._replace(spec, slots, slot)
                return
            state["start_failures"] += 1
            if not state["ever_ready"]:
                raise ConfigError(f"render actor failed to start: {_describe(exc)}") from exc
            if state["start_failures"] > 3 * len(slots) + 3:
                raise PromptreelError(
                    f"render actors keep failing to start ({state['start_failures']} times); "
                    f"last: {_describe(exc)}"
                ) from exc
            self._replace(spec, slots, slot)
            return
        slot.ready_ref = None
        state["ever_ready"] = True

    def _on_done(self, spec, slots, feed, slot, batch, ref) -> None:
        import ray

        slot.load -= 1
        slot.progress_at = time.monotonic()
        self.gate.finished(batch)
        if slot.load == 0:
            slot.exclusive = False
        try:
            final, again = self.book.on_results(batch, ray.get(ref))
        except Exception as exc:  # noqa: BLE001 - only lost-batch errors are handled
            if type(exc).__name__ not in _LOST and not isinstance(exc, ray.exceptions.RayError):
                raise
            final, again = self.book.on_crash(batch, _describe(exc))
            if slot in slots and _is_dead(exc):
                self._replace(spec, slots, slot)
        self.on_final(final)
        feed.retries.extend(again)

    def _kill_hung(self, slots) -> None:
        """An actor with work and no result for --batch-timeout is killed: its batches then
        fail as lost (an attempt each) and it is replaced, like any dead actor."""
        limit = self.cluster.batch_timeout_s
        now = time.monotonic()
        for slot in slots:
            if limit and slot.load and now - slot.progress_at > limit:
                _kill(slot.actor)
                slot.progress_at = now  # its refs now fail; do not kill it twice

    def _replace(self, spec, slots, slot) -> None:
        _kill(slot.actor)
        slots[slots.index(slot)] = _Slot(self._new_actor(spec), spec)

    def _check_stalled(self, slots, in_flight, state) -> None:
        if in_flight or any(s.ready_ref is None for s in slots):
            state["idle_since"] = time.monotonic()
        elif time.monotonic() - state["idle_since"] > self.start_timeout_s:
            raise PromptreelError(
                f"no render actor could start for {self.start_timeout_s:.0f}s (not enough "
                "CPUs/GPUs in the cluster?); finished work is saved, run again to resume"
            )


class _AlwaysOpen:
    """No deadline and no signal: every batch may start."""

    stopping = False

    def admit(self, actor_load: int) -> bool:
        return True

    def dispatched(self, batch) -> None:
        pass

    def finished(self, batch) -> None:
        pass

    def abandon_due(self) -> bool:
        return False


def render_actor(cluster: ClusterSettings, spec: WorkerSpec, load_now: bool = True):
    """(actor, whether a process was started): one kept warm by an earlier job of this
    process when there is one (it loads `spec` in its next `ready`), else a new one."""
    from pipeline.driver import warm_actors

    actor = warm_actors.take(cluster)
    if actor is not None:
        return actor, False
    return new_render_actor(cluster, spec, load_now), True


def new_render_actor(cluster: ClusterSettings, spec: WorkerSpec, load_now: bool = True):
    import ray

    actor_class = ray.remote(RenderActor).options(
        num_cpus=cluster.cpus_per_actor,
        num_gpus=cluster.gpus_per_actor,
        max_concurrency=2,  # one batch renders while the previous one encodes
        max_restarts=0,  # replaced by the dispatcher, which knows what was in flight
    )
    return actor_class.remote(spec, load_now)


def kill_actor(actor) -> None:
    import ray

    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone with its node
        pass


_kill = kill_actor


def _is_dead(exc: Exception) -> bool:
    import ray

    return isinstance(exc, ray.exceptions.RayActorError)


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]
