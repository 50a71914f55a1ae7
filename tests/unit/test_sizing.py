"""`--actors auto` (pipeline/driver/sizing.py): how many render actors a run starts when
not told, from the machine, the model's size on disk and the flags; explicit counts kept.
And how actors share the cores: their OpenMP threads wait passively."""

from __future__ import annotations

import dataclasses
import os

import pytest

from pipeline.cli.parser import build_parser
from pipeline.cli.run_config import config_from_args
from pipeline.config import ClusterSettings, RenderSettings, RunConfig, ScoreSettings
from pipeline.driver.sizing import (
    PROCESS_BYTES,
    Machine,
    auto_actors,
    cgroup_cpus,
    cgroup_free_memory,
    checkpoint_bytes,
    with_actor_count,
)

GIB = 2**30
ROOMY = Machine(cpus=2, gpus=0, free_memory=64 * GIB)


def config(**cluster) -> RunConfig:
    return RunConfig(manifest="m.parquet", out="run", cluster=ClusterSettings(**cluster))


@pytest.fixture(autouse=True)
def _no_cluster_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def test_a_local_cpu_run_gets_one_actor_per_cpu_share():
    assert auto_actors(config(), ROOMY, model_bytes=10**6) == 2
    assert auto_actors(config(cpus_per_actor=0.5), ROOMY, 10**6) == 4
    assert auto_actors(config(cpus_per_actor=4), ROOMY, 10**6) == 1  # never none
    many = dataclasses.replace(ROOMY, cpus=16)
    assert auto_actors(config(), many, 10**6) == 16


def test_a_scorer_keeps_its_cpus():
    scored = dataclasses.replace(config(), scores=ScoreSettings(scorers=(("motion", None),)))
    assert auto_actors(scored, ROOMY, 10**6) == 1
    four = dataclasses.replace(ROOMY, cpus=4)
    assert auto_actors(scored, four, 10**6) == 3


def test_memory_bounds_the_copies_of_the_weights():
    model = 3 * GIB  # each actor: its process and two copies of the weights while loading
    per_actor = PROCESS_BYTES + 2 * model
    machine = Machine(cpus=16, gpus=0, free_memory=int(3 * per_actor / 0.75) + 1)
    assert auto_actors(config(), machine, model) == 3
    tight = dataclasses.replace(machine, free_memory=per_actor)
    assert auto_actors(config(), tight, model) == 1  # one always runs (as with --actors 1)
    unknown = dataclasses.replace(machine, free_memory=0)  # no /proc/meminfo
    assert auto_actors(config(), unknown, model) == 1


def test_weights_of_unknown_size_get_one_actor():
    assert auto_actors(config(), ROOMY, model_bytes=None) == 1


def test_gpus_are_shared_at_gpus_per_actor():
    machine = Machine(cpus=32, gpus=4, free_memory=GIB)
    gpu = dataclasses.replace(config(gpus_per_actor=1), render=RenderSettings(device="cuda"))
    assert auto_actors(gpu, machine, None) == 4
    half = dataclasses.replace(gpu, cluster=ClusterSettings(gpus_per_actor=0.5))
    assert auto_actors(half, machine, None) == 8
    none = dataclasses.replace(machine, gpus=0)
    assert auto_actors(gpu, none, None) == 1
    # On a GPU without a Ray GPU share: one, as before auto existed.
    assert auto_actors(dataclasses.replace(gpu, cluster=ClusterSettings()), machine, 1) == 1


def test_a_joined_cluster_gets_one_unless_told(monkeypatch):
    assert auto_actors(config(address="ray://head:10001"), ROOMY, 10**6) == 1
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    assert auto_actors(config(), ROOMY, 10**6) == 1


def test_explicit_counts_are_kept_and_auto_is_resolved():
    explicit = config(actors=5)
    assert with_actor_count(explicit, ["tiny"], ROOMY) is explicit
    auto = config(actors=None)
    assert with_actor_count(auto, ["tiny", "null"], ROOMY).cluster.actors == 2
    # A model of unknown size among them (a hub id): one copy only.
    assert auto_actors(auto, ROOMY, None) == 1


def test_checkpoint_bytes_counts_a_local_directory(tmp_path):
    from pipeline.models.tiny import ensure_tiny_model

    tiny = ensure_tiny_model()
    total = sum(p.stat().st_size for p in tiny.rglob("*") if p.is_file())
    assert checkpoint_bytes("tiny") == total > 0
    assert checkpoint_bytes(str(tiny)) == total
    assert checkpoint_bytes("null") == 0


def test_the_cli_default_is_auto_and_counts_parse():
    def actors(*flags):
        args = build_parser().parse_args(["render", "m.parquet", "--out", "r", *flags])
        return config_from_args(args).cluster.actors

    assert actors() is None
    assert actors("--actors", "auto") is None
    assert actors("--actors", "3") == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            actors("--actors", bad)


def _cgroup(root, files: dict):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return root


def test_a_containers_cgroup_bounds_cpus_and_memory(tmp_path):
    v2 = _cgroup(tmp_path / "v2", {"cpu.max": "150000 100000", "memory.max": str(4 * GIB)})
    (v2 / "memory.current").write_text(str(GIB))
    assert cgroup_cpus(v2) == 1.5 and cgroup_free_memory(v2) == 3 * GIB
    machine = Machine.local(cgroup=v2)
    assert machine.cpus <= 2 and machine.free_memory <= 3 * GIB

    free = _cgroup(tmp_path / "free", {"cpu.max": "max 100000", "memory.max": "max"})
    assert cgroup_cpus(free) is None and cgroup_free_memory(free) is None

    v1 = _cgroup(
        tmp_path / "v1",
        {
            "cpu/cpu.cfs_quota_us": "200000",
            "cpu/cpu.cfs_period_us": "100000",
            "memory/memory.limit_in_bytes": str(2 * GIB),
            "memory/memory.usage_in_bytes": str(GIB // 2),
        },
    )
    assert cgroup_cpus(v1) == 2.0 and cgroup_free_memory(v1) == GIB * 3 // 2
    unlimited = _cgroup(
        tmp_path / "v1-none",
        {
            "cpu/cpu.cfs_quota_us": "-1",
            "cpu/cpu.cfs_period_us": "100000",
            "memory/memory.limit_in_bytes": "9223372036854771712",
        },
    )
    assert cgroup_cpus(unlimited) is None and cgroup_free_memory(unlimited) is None
    assert cgroup_cpus(tmp_path / "absent") is None
    assert cgroup_free_memory(tmp_path / "absent") is None


def test_render_actors_wait_passively_unless_told(monkeypatch):
    from pipeline.actor.worker import WorkerSpec
    from pipeline.config import EncodeSettings
    from pipeline.driver.executor import RenderActor
    from pipeline.rundir.layout import RunDir

    spec = WorkerSpec("null", RenderSettings(model="null"), EncodeSettings(), RunDir("unused"))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    RenderActor(spec, load_now=False)
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a user's own choice stays
    RenderActor(spec, load_now=False)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
