"""The source runs of the export tests, rendered once per session.

`export_source_run` (null model: exports copy files, whatever drew their frames): 4 hostile
prompts x 5 seeds, the same request twice under two ids,
a case-only twin, a row that fails, passthrough columns (one called `text`).
`export_gif_run` (null model: cheap frames; it is about the format): 2 gif clips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import read_catalog
from tests.support.export_data import manifest_rows, render


@pytest.fixture(scope="session")
def export_source_run(tmp_path_factory, ray_local) -> Path:
    tmp = tmp_path_factory.mktemp("export-run")
    run = render(tmp, manifest_rows(), "--batch-size", "4", "--model", "null")
    statuses = read_catalog(run)["status"].to_pylist()
    assert statuses.count("ok") == 23 and statuses.count("failed") == 1
    return run


@pytest.fixture(scope="session")
def export_gif_run(tmp_path_factory, ray_local) -> Path:
    rows = [
        {"id": f"g{i}", "prompt": f"a gif, take {i}.", "seed": i, "vbench_name": "g"}
        for i in (1, 2)
    ]
    # The null model (cheap frames, no torch in the actor): this run is about the format.
    return render(tmp_path_factory.mktemp("gif-run"), rows, "--format", "gif", "--model", "null")
