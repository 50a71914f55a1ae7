"""Render actors kept warm between the jobs of one driver process (opt-in).

A render actor's process costs seconds before its first batch: Ray starts a Python worker,
which imports torch and diffusers (about 7 CPU-s each on the 2-core machine; on a GPU also
the CUDA context). A process that runs several jobs one after another (a notebook, a
service, the test suite) can keep the actors of a finished job and hand them to the next
job, which loads its own model in them through `ready(spec)`, exactly as a job with a
`model` column loads its second model in the actors of the first.

Only actors that finished their work and sit idle are kept; one that died meanwhile is
found when it is taken (a ping) and a new one starts instead. Kept actors hold their
CPUs/GPUs, so this is off unless asked for: `keep_at_most(N)` in the process, or
PROMPTREEL_KEEP_ACTORS=N in its environment. The CLI runs one job per process, where
keeping would only delay freeing the cluster.
"""

from __future__ import annotations

import os

from pipeline.config import ClusterSettings

KEEP_ENV = "PROMPTREEL_KEEP_ACTORS"

_kept: dict[tuple, list] = {}  # (Ray node and job, actor resources) -> idle actors
_limit: int | None = None  # set by keep_at_most; else the environment says


def keep_at_most(count: int) -> None:
    """Keep up to `count` idle render actors between this process's jobs (0: none)."""
    global _limit
    _limit = max(0, count)


def limit() -> int:
    if _limit is not None:
        return _limit
    try:
        return max(0, int(os.environ.get(KEEP_ENV, "0")))
    except ValueError:
        return 0


def _pool_key(cluster: ClusterSettings) -> tuple:
    import ray

    context = ray.get_runtime_context()  # a new Ray (or job) never sees older handles
    return (
        context.get_node_id(),
        context.get_job_id(),
        cluster.cpus_per_actor,
        cluster.gpus_per_actor,
    )


def keep(actors: list, cluster: ClusterSettings) -> list:
    """Keep what the limit allows of `actors` (idle, ready); returns the rest to kill."""
    room = limit() - sum(len(pool) for pool in _kept.values())
    if room <= 0 or not actors:
        return list(actors)
    _kept.setdefault(_pool_key(cluster), []).extend(actors[:room])
    return list(actors[room:])


def take(cluster: ClusterSettings):
    """A kept, live actor with `cluster`'s resources, or None."""
    if not _kept:
        return None
    import ray

    key = _pool_key(cluster)
    for stale in [k for k in _kept if k[:2] != key[:2]]:
        del _kept[stale]  # another Ray or job: those actors are gone with it
    pool = _kept.get(key, [])
    while pool:
        actor = pool.pop()
        try:
            ray.get(actor.ping.remote())  # idle when kept: answers at once, or is dead
        except ray.exceptions.RayError:
            continue
        return actor
    return None
