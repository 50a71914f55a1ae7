"""job.json: what it holds and the rules a resume must pass. A run dir belongs to one job.

- the job fingerprint (`job_fingerprint`): model content hash (a hub id: its commit sha),
  render and encode settings, key and batching versions. It must match exactly on a
  resume; a difference is refused, one line per difference.

Two more fields have rules of their own:

- `hub_pins`: {model spec as written: full commit sha} for every hub model the run used.
  A resume whose spec now resolves to another commit (a branch moved) is refused, naming
  both and how to pin one with `ID@sha`. Specs new to the run are added (incremental runs).
- `versions`: torch, diffusers and transformers, from package metadata (the driver never
  imports torch). A resume on other versions is refused with the differences listed, unless
  `--allow-version-change`: then the new versions are recorded and the replaced set is
  appended to `earlier_versions` (with the time), so job.json still says which libraries
  made the earlier clips. A job.json from before versions were recorded resumes the same
  way without the flag: its versions were never known, so nothing can be compared; the
  current ones are recorded and `earlier_versions` gets `null` for the unknown set.
- `scorers`: {name: {flag, scorer_id}} of every scorer the run has (`--score`, `promptreel
  score`): the scorer id names its checkpoint (hub sha or directory digest) and definition
  version. Added to or replaced, never compared: scores never change a pixel.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timezone

from pipeline.config import EncodeSettings, RenderSettings, RunConfig
from pipeline.errors import ConfigError
from pipeline.models import model_fingerprint, resolve_model
from pipeline.models.hub import pinned_spec, split_hub_spec
from pipeline.plan.composition import BATCHING_VERSION
from pipeline.plan.keys import KEY_VERSION
from pipeline.rundir.layout import RunDir

PINS, VERSIONS, EARLIER = "hub_pins", "versions", "earlier_versions"
SCORERS = "scorers"  # {name: {flag, scorer_id}}: the catalog's score_<name> columns
RECORD_FIELDS = (PINS, VERSIONS, EARLIER, SCORERS)
PINNED_LIBRARIES = ("torch", "diffusers", "transformers")
ALLOW_FLAG = "--allow-version-change"

log = logging.getLogger("promptreel")


def library_versions(extra: Iterable[str] = ()) -> dict[str, str | None]:
    """Versions of the libraries that decide pixels (None: not installed); `extra`: the
    run's families' pixel_packages."""
    versions = {}
    for name in (*PINNED_LIBRARIES, *sorted(set(extra))):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_record(model_specs: Iterable[str]) -> dict:
    """The record for this command: the commit of each hub model it uses, the versions."""
    refs = [resolve_model(spec) for spec in dict.fromkeys(model_specs)]
    pins = {ref.spec: ref.revision for ref in refs if ref.kind == "hub"}
    extra = (name for ref in refs for name in ref.family.pixel_packages)
    return {PINS: pins, VERSIONS: library_versions(extra)}


def without_record(job: dict) -> dict:
    """job.json minus this module's fields: what fingerprint_differences compares."""
    return {name: value for name, value in job.items() if name not in RECORD_FIELDS}


def check_hub_pins(url: str, recorded: dict, current: dict) -> None:
    """Refuse a resume in which a hub model the run used now resolves to another commit."""
    old_pins, new_pins = recorded.get(PINS) or {}, current.get(PINS) or {}
    moved = [
        spec for spec in sorted(new_pins) if old_pins.get(spec, new_pins[spec]) != new_pins[spec]
    ]
    if not moved:
        return
    lines = []
    for spec in moved:
        pinned = pinned_spec(split_hub_spec(spec)[0], old_pins[spec])
        lines.append(
            f"model {spec!r}: this run dir was rendered at commit {old_pins[spec]}, but it now "
            f"resolves to {new_pins[spec]}.\n    To finish the run with its own weights, pin "
            f"them: --model {pinned} (or that value in the manifest's `model` cells)"
        )
    raise ConfigError(
        f"{url} holds clips of other weights; refusing to mix them with this one:\n  "
        + "\n  ".join(lines)
        + "\nTo render the new commit instead, use another --out."
    )


def resumed_record(url: str, recorded: dict, current: dict, allow_version_change: bool) -> dict:
    """job.json after this resume (pins merged, versions kept or replaced), or ConfigError."""
    if not current:
        return recorded
    updated = {**recorded, PINS: {**(recorded.get(PINS) or {}), **current.get(PINS, {})}}
    old, new = recorded.get(VERSIONS), current[VERSIONS]
    if old == new:
        return updated
    if old is not None and not version_differences(old, new):
        return {**updated, VERSIONS: {**old, **new}}  # newly recorded, as absent as before
    if old is not None:
        differences = version_differences(old, new)
        if not allow_version_change:
            raise ConfigError(
                f"{url} was rendered with other library versions; a resume would mix their "
                "numerics in one run:\n  " + "\n  ".join(differences) + "\nInstall the run's "
                f"versions, use another --out, or pass {ALLOW_FLAG} to accept the change "
                f"(job.json then records the new versions, the old ones in `{EARLIER}`)."
            )
        log.warning(
            "%s: library versions changed (%s):\n  %s", url, ALLOW_FLAG, "\n  ".join(differences)
        )
    else:
        log.warning("%s: job.json had no library versions; recording the current ones", url)
    replaced = {
        "versions": old,
        "replaced_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    updated[VERSIONS] = new
    updated[EARLIER] = [*(recorded.get(EARLIER) or []), replaced]
    return updated


def version_differences(old: dict, new: dict) -> list[str]:
    return [
        f"{name}: run dir has {old.get(name)!r}, this environment has {new.get(name)!r}"
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]


def pinned_model(job: dict, spec: str) -> str:
    """The spec to load for a catalog row's `model`: its recorded commit, for hub ids."""
    sha = (job.get(PINS) or {}).get(spec.strip())
    return pinned_spec(split_hub_spec(spec.strip())[0], sha) if sha else spec


def read_job(run: RunDir) -> dict | None:
    """The run dir's job.json, or None before the first claim."""
    data = run.read_bytes(run.job_json)
    return None if data is None else json.loads(data)


def _write_job(run: RunDir, job: dict) -> None:
    run.write(run.job_json, json.dumps(job, indent=2, sort_keys=True).encode())


def claim(run: RunDir, fingerprint: dict, record: dict | None = None, allow_version_change=False):
    """Record the job in job.json, or refuse a run dir that belongs to another job.
    `record` (hub commits, library versions: `run_record`) follows the rules above."""
    recorded = read_job(run)
    if recorded is None:
        _write_job(run, {**fingerprint, **(record or {})})
        return
    check_hub_pins(run.url, recorded, record or {})
    differences = fingerprint_differences(without_record(recorded), fingerprint)
    if differences:
        raise ConfigError(
            f"{run.url} holds a different job; refusing to mix its clips with this one:\n  "
            + "\n  ".join(differences)
            + "\nUse another --out, or the run's original settings."
        )
    updated = resumed_record(run.url, recorded, record or {}, allow_version_change)
    if updated != recorded:
        _write_job(run, updated)


def job_fingerprint(render: RenderSettings, encode: EncodeSettings) -> dict:
    """Everything besides the request that decides an item's pixels and bytes."""
    return {
        "model": model_fingerprint(resolve_model(render.model)),
        "render": render.fingerprint_fields(),
        "encode": encode.fingerprint_fields(),
        "key_version": KEY_VERSION,
        "batching": BATCHING_VERSION,
    }


def fingerprint_differences(recorded: dict, current: dict, prefix: str = "") -> list[str]:
    """Human-readable list of settings that differ between two job fingerprints."""
    differences = []
    for name in sorted(set(recorded) | set(current)):
        old, new = recorded.get(name), current.get(name)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += fingerprint_differences(old, new, f"{prefix}{name}.")
        elif old != new:
            differences.append(f"{prefix}{name}: run dir has {old!r}, this command has {new!r}")
    return differences


def claim_job(run: RunDir, config: RunConfig, model_specs: Iterable[str]) -> None:
    """Claim the run dir for this command's job (cheap: no plan needed)."""
    fingerprint = job_fingerprint(config.render, config.encode)
    record = run_record([config.render.model, *model_specs])
    claim(run, fingerprint, record, config.allow_version_change)


def record_scorers(run: RunDir, scorers: dict[str, dict]) -> dict[str, dict]:
    """Add or replace this command's scorers ({name: {flag, scorer_id}}) in job.json; the
    run's scorers, all of them, in the order they were first added. Never in the
    fingerprint: scores never change pixels, and a scorer may be added to a finished run."""
    job = read_job(run) or {}
    merged = {**(job.get(SCORERS) or {}), **scorers}
    if scorers and job and merged != job.get(SCORERS):  # a run without --score writes nothing
        _write_job(run, {**job, SCORERS: merged})
    return merged
