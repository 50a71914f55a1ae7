"""How many render actors `--actors auto` (the CLI's default) starts on a local Ray.

Measured (bench/README.md, section 1): on the 2-core machine, tiny Wan at 2 torch threads
per actor renders 18.5 items/s with one actor and 24 items/s with two (the same pixels: an
actor's threads decide them, not the actor count). One actor's 2 threads leave the cores
idle part of the time: most of a tiny call is small ops (the Wan VAE's channel norms and
convolutions) whose threads wait on each other. So a local run fills the machine:

- one actor per CPU, at `--cpus-per-actor` each (a scorer's CPUs set aside first), or one
  per GPU share with `--gpus-per-actor`;
- on the CPU, no more than the free memory holds: each actor holds its own copy of the
  weights. A model whose size is not known here (hub weights the actors download) gets one;
- never more than there are batches (startup.py and the dispatcher already bound that).

A run that joins a cluster (`--address` / RAY_ADDRESS) gets one actor unless told: its
resources are only known once joined, and a shared cluster is not ours to fill.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import RunConfig

PROCESS_BYTES = 2**30  # an actor before its weights: torch + diffusers + Ray (~0.45 GiB RSS)
WEIGHT_COPIES = 2  # weights in memory while loading (file pages + tensors), and activations
MEMORY_SHARE = 0.75  # of the memory free now: the rest stays for the driver and the encodes


@dataclass(frozen=True)
class Machine:
    """What this host offers a local Ray."""

    cpus: int
    gpus: int
    free_memory: int  # bytes

    @classmethod
    def local(cls) -> Machine:
        return cls(_usable_cpus(), _local_gpus(), _free_memory())


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


def _usable_cpus() -> int:
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
