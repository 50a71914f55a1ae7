"""cluster.yaml and jobs/rayjob.yaml parse, pass Ray's own config checks, name the fields
Ray and KubeRay read, and their render commands parse with promptreel's own parser."""

from __future__ import annotations

import re
import shlex
from importlib.metadata import requires

import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from pipeline.cli.parser import build_parser
from pipeline.cli.run_config import config_from_args
from tests.conftest import REPO

DOCUMENTED = ("docs/cluster.md", "cluster.yaml", "README.md")


def load(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def parse_render(command: str):
    """`python -m jobs.render ARGS` -> the RunConfig promptreel would run."""
    words = shlex.split(command, comments=True)
    assert words[:3] == ["python", "-m", "jobs.render"], command
    return config_from_args(build_parser().parse_args(["render", *words[3:]]))


def test_cluster_yaml_is_a_valid_autoscaler_config():
    config = load("cluster.yaml")
    validate_config(prepare_config(config))  # what `ray up` runs before touching a cloud

    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0  # CPU-only head
    gpu_types = [t for t in types.values() if t is not head and t["resources"].get("GPU", 0) >= 1]
    assert gpu_types, "a GPU worker type"
    for worker in gpu_types:
        assert 0 <= worker["min_workers"] <= worker["max_workers"] <= config["max_workers"]
        assert worker["max_workers"] >= 1 and worker["node_config"]["InstanceType"]
    assert config["docker"]["image"].startswith("rayproject/ray:")

    # Setup installs the project from the checkout that file_mounts puts on every node.
    checkout = next(remote for remote, local in config["file_mounts"].items() if local == ".")
    for commands in (config["head_setup_commands"], config["worker_setup_commands"]):
        assert any("pip install" in c and checkout in c for c in commands), commands
    # The job server stays on the head's loopback (reached through `ray dashboard`).
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])


def test_rayjob_names_the_fields_kuberay_reads():
    job = load("jobs/rayjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    assert spec["backoffLimit"] >= 1  # a dead driver is resubmitted, and resumes
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["submissionMode"] in ("K8sJobMode", "HTTPMode", "SidecarMode")

    config = parse_render(spec["entrypoint"])
    assert config.out.startswith("s3://") and config.manifest.startswith("s3://")
    assert config.cluster.gpus_per_actor == 1 and config.render.device == "cuda"

    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert set(runtime_env) <= {"working_dir", "pip", "env_vars", "py_modules", "excludes"}
    pinned = {re.split(r"[<>=\[ ]", p, maxsplit=1)[0].lower() for p in runtime_env["pip"]}
    runtime = [r for r in requires("promptreel") if "extra ==" not in r]  # pyproject deps
    needed = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower() for d in runtime}
    assert needed - {"ray"} <= pinned, "runtimeEnvYAML pip misses project dependencies"

    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    head = cluster["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    head_container = head["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in head_container.get("resources", {}).get("limits", {})
    images = [head_container["image"]]
    (group,) = cluster["workerGroupSpecs"]
    assert group["groupName"] and isinstance(group["rayStartParams"], dict)
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    container = group["template"]["spec"]["containers"][0]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    images.append(container["image"])
    assert all(image.startswith(f"rayproject/ray:{ray.__version__}") for image in images)


def test_documented_commands_parse():
    text = "\n".join((REPO / name).read_text() for name in DOCUMENTED)
    text = re.sub(r"\\\n[#\s]*", " ", text)  # join continued lines (also inside comments)
    commands = re.findall(r"python -m jobs\.render[^\n`]*", text)
    assert len(commands) >= 3
    for command in commands:
        config = parse_render(command)
        assert (config.cluster.actors is None or config.cluster.actors >= 1) and config.out
