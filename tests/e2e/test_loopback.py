"""A local Ray started by promptreel listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import json, psutil
from pipeline.config import ClusterSettings
from pipeline.driver.executor import init_ray
init_ray(ClusterSettings())
import ray
ray.get(ray.remote(lambda: 1).remote())
me = psutil.Process()
procs = [me] + me.children(recursive=True)
addresses = []
for proc in procs:
    try:
        conns = proc.net_connections(kind="inet")
    except psutil.Error:
        continue
    for c in conns:
        if c.status == psutil.CONN_LISTEN:
            addresses.append(["listen", c.laddr.ip])
        elif c.raddr:
            addresses.append(["peer", c.raddr.ip])
print(json.dumps(addresses))
ray.shutdown()
"""


def test_local_ray_binds_and_talks_on_loopback_only():
    env_free = {
        k: v
        for k, v in __import__("os").environ.items()
        if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    }  # promptreel must set it itself
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env=env_free,
    )
    assert result.returncode == 0, result.stderr
    addresses = json.loads(result.stdout.strip().splitlines()[-1])
    assert any(kind == "listen" for kind, _ in addresses)
    loopback = ("127.", "::ffff:127.", "::1")
    outside = [a for a in addresses if not a[1].startswith(loopback)]
    assert outside == []
