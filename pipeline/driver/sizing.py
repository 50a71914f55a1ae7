"""How many render actors `--actors auto` (the CLI's default) starts on a local Ray.

Measured (bench/README.md, section 1): on the 2-core machine, tiny Wan at 2 torch threads
per actor renders 18.5 items/s with one actor and 24 items/s with two (the same pixels: an
actor's threads decide them, not the actor count). One actor's 2 threads leave the cores
idle part of the time: most of a tiny call is small ops (the Wan VAE's channel norms and
convolutions) whose threads wait on each other. So a local run fills the machine:

- one actor per CPU, at `--cpus-per-actor` each (a scorer's CPUs set aside first), or one
  per GPU share with `--gpus-per-actor` (a container's cgroup CPU quota and memory limit
  count, not only the host's);
- on the CPU, no more than the free memory holds: each actor holds its own copy of the
  weights. A model whose size is not known here (hub weights the actors download) gets one;
- never more than there are batches (startup.py and the dispatcher already bound that).

A run that joins a cluster (`--address` / RAY_ADDRESS) gets one actor unless told: its
resources are only known once joined, and a shared cluster is not ours to fill.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import RunConfig

PROCESS_BYTES = 2**30  # an actor before its weights: torch + diffusers + Ray (~0.45 GiB RSS)
WEIGHT_COPIES = 2  # weights in memory while loading (file pages + tensors), and activations
MEMORY_SHARE = 0.75  # of the memory free now: the rest stays for the driver and the encodes
CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Machine:
    """What this host offers a local Ray."""

    cpus: int
    gpus: int
    free_memory: int  # bytes

    @classmethod
    def local(cls, cgroup: Path = CGROUP) -> Machine:
        """This host as a process here sees it: a container's CPU quota and memory limit
        (cgroup v2 or v1) bound what /proc and the affinity mask report for the host."""
        cpus, quota = _affinity_cpus(), cgroup_cpus(cgroup)
        if quota is not None:
            cpus = min(cpus, max(1, math.ceil(quota)))
        memory, room = _free_memory(), cgroup_free_memory(cgroup)
        if room is not None:
            memory = min(memory, room)
        return cls(cpus, _local_gpus(), memory)


def auto_actors(config: RunConfig, machine: Machine, model_bytes: int | None) -> int:
    """The actor count for `--actors auto` on `machine` (see the module docstring)."""
    cluster = config.cluster
    if cluster.address or os.environ.get("RAY_ADDRESS"):
        return 1
    if cluster.gpus_per_actor > 0:
        return max(1, int(machine.gpus / cluster.gpus_per_actor))
    if config.render.device != "cpu" or model_bytes is None:
        return 1
    scorer_cpus = config.scores.cpus if config.scores.scorers else 0.0
    spare = machine.cpus - scorer_cpus
    by_cpu = int(spare / cluster.cpus_per_actor) if cluster.cpus_per_actor > 0 else machine.cpus
    per_actor = PROCESS_BYTES + WEIGHT_COPIES * model_bytes
    by_memory = int(MEMORY_SHARE * machine.free_memory / per_actor)
    return max(1, min(by_cpu, by_memory))


def with_actor_count(config: RunConfig, models: list[str], machine: Machine | None = None):
    """`config` with `--actors auto` (None) replaced by a count; explicit counts kept."""
    if config.cluster.actors is not None:
        return config
    sizes = [checkpoint_bytes(model) for model in models]
    biggest = None if None in sizes else max(sizes, default=0)
    count = auto_actors(config, machine or Machine.local(), biggest)
    return dataclasses.replace(config, cluster=dataclasses.replace(config.cluster, actors=count))


def checkpoint_bytes(spec: str) -> int | None:
    """Bytes of a model's weights on this disk; None where they are not all here."""
    from pipeline.models import model_location, resolve_model

    ref = resolve_model(spec)
    if ref.kind == "null":
        return 0
    if ref.kind not in ("tiny", "local"):
        return None  # hub: what is cached may be a part (model_index.json alone)
    root = Path(model_location(ref))
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def cgroup_cpus(root: Path) -> float | None:
    """The CPU quota of this process's cgroup (v2 `cpu.max`, v1 `cfs_quota_us`), if any."""
    v2 = _read(root / "cpu.max")  # "max 100000" or "200000 100000"
    if v2 is not None:
        quota, period = v2.split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    quota, period = _read(root / "cpu/cpu.cfs_quota_us"), _read(root / "cpu/cpu.cfs_period_us")
    if quota is None or period is None or int(quota) <= 0:
        return None  # -1: no quota
    return int(quota) / int(period)


def cgroup_free_memory(root: Path) -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 or v1), if it has one."""
    for limit_name, used_name in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        limit = _read(root / limit_name)
        if limit is None:
            continue
        if limit == "max" or int(limit) >= 2**60:  # v1 writes "no limit" as ~2**63
            return None
        return max(0, int(limit) - int(_read(root / used_name) or 0))
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return None


def _affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # a container's or taskset's share
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _local_gpus() -> int:
    """NVIDIA GPUs this process may use, without importing torch (seconds in the driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


def _free_memory() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0  # unknown: the memory bound allows one actor
