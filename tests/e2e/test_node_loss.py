"""Node and actor loss (issue 4, point 6): only the lost batch runs again, elsewhere.

Real kills: a render actor's process gets SIGKILL (the one the test-only `stall` fault
holds in a batch: it names its pid), and a worker node of a multi-node
`ray.cluster_utils.Cluster` (fake GPUs, all on 127.0.0.1) is removed mid-run while a
subprocess driver is joined to it.
"""

from __future__ import annotations

import os
import signal
import threading

import pyarrow.compute as pc
import pytest

from tests.conftest import prompt_rows, read_catalog, write_manifest
from tests.support.runs import (
    assert_exactly_once,
    by_id,
    kill_session,
    ledger_keys,
    poll,
    run_in_process,
    start_render,
)

FLAGS = ("--batch-size", "4", "--flush-interval", "0.2", "--no-progress")


def test_killed_render_actor_costs_only_its_batches(ray_local, tmp_path):
    rows = prompt_rows(12, prefix="actorkill", height=64, width=64)
    manifest = write_manifest(tmp_path / "prompts.parquet", rows)
    out = tmp_path / "run"
    stalled = rows[5]["prompt"]
    killed: list[int] = []
    failure: list[BaseException] = []

    def kill_the_stalled_actor():
        # The `stall` fault marks its item with the actor's pid, then blocks until killed:
        # the kill lands while that actor provably holds the item's batch, never earlier
        # or later (its second batch in flight, if any, is lost with it).
        try:
            mark = poll(lambda: next((out / "_state").glob("stalled-*"), None), None, None)
            pid = mark.read_text()  # written whole (a rename), as every run-dir file
            os.kill(int(pid), signal.SIGKILL)
            killed.append(int(pid))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)

    # The render runs in this (main) thread; the killer waits for the mark beside it.
    killer = threading.Thread(target=kill_the_stalled_actor, daemon=True)
    killer.start()
    code = run_in_process(manifest, out, "--actors", "1", f"--inject-fault=stall:{stalled}", *FLAGS)
    killer.join(timeout=60)
    assert not failure and killed, failure
    assert code == 0
    assert_exactly_once(out, [row["id"] for row in rows])
    attempts = by_id(read_catalog(out), "status", "attempts")
    assert {status for status, _ in attempts.values()} == {"ok"}
    # The dead actor had at most 2 batches of 4 in flight; only those ran a second time,
    # and the run finished with one attempt wasted for them, not more.
    again = [i for i, (_, n) in attempts.items() if n > 1]
    print(f"actor {killed[0]} killed: {len(again)} of {len(rows)} items ran a second time")
    assert len(again) <= 2 * 4 and all(n <= 2 for _, n in attempts.values()), attempts
    assert again, f"the kill of actor {killed} hit no batch in flight"


@pytest.fixture
def cluster():
    """Two nodes with one fake GPU each: the head (it must stay: it holds the GCS) and a
    worker node, the one removed. A third node would cost a raylet and its agents (~10
    CPU-s) and prove nothing more."""
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 2, "num_gpus": 1, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    worker = cluster.add_node(**node)
    cluster.wait_for_nodes()
    yield cluster, worker
    cluster.shutdown()


def test_removed_node_costs_only_its_batches(cluster, tmp_path):
    cluster, worker = cluster
    rows = prompt_rows(16, prefix="nodeloss", height=64, width=64)
    manifest = write_manifest(tmp_path / "prompts.parquet", rows)
    out = tmp_path / "run"
    log = tmp_path / "driver.log"
    flags = ("--actors", "2", "--gpus-per-actor", "1", "--device", "cpu", *FLAGS)
    proc = start_render(manifest, out, "--address", cluster.address, *flags, log=log)
    try:
        # Both actors (one per node: one GPU each) have rendered before the node goes.
        poll(lambda: len(ledger_keys(out)) >= 4, proc, log)
        cluster.remove_node(worker, allow_graceful=False)
        # No GPU is left for a replacement actor: the survivor must finish the run.
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            kill_session(proc)
    assert code == 0, log.read_text()[-3000:]
    assert_exactly_once(out, [row["id"] for row in rows])
    catalog = read_catalog(out)
    assert pc.all(pc.equal(catalog["status"], "ok")).as_py()
    assert len(set(catalog["key"].to_pylist())) == len(rows)  # nothing doubled
    attempts = catalog["attempts"].to_pylist()
    print(f"node removed: {attempts.count(2)} of {len(rows)} items ran a second time")
    assert max(attempts) <= 2 and attempts.count(2) <= 2 * 4, attempts
