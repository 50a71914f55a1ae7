"""pipeline/schema.py owns every column: reserved names are derived from it, and refused."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from pipeline import schema
from pipeline.errors import ManifestError
from pipeline.plan.manifest import validate
from pipeline.plan.planner import make_plan
from pipeline.rundir.catalog import build_catalog
from tests.conftest import REPO


def problems_for(column: str) -> list[str]:
    table = pa.table({"prompt": ["a cat"], "seed": [1], column: ["x"]})
    try:
        validate(table)
    except ManifestError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_every_column_promptreel_writes_is_refused_with_a_free_name_to_use():
    for column in (*schema.WRITTEN_COLUMNS, schema.ROW):
        problems = problems_for(column)
        assert len(problems) == 1 and problems[0].startswith(f"{column}: column '{column}' is")
        suggested = re.search(r"rename it \(e\.g\. '([^']+)'\)", problems[0]).group(1)
        assert schema.reserved_reason(suggested) is None
        assert problems_for(suggested) == []  # the suggestion really is free


@pytest.mark.parametrize(
    "column",
    ["qc_flags", "qc_new_score", "score_clip", "thumb_uri", "media_image", "image_sha256"],
)
def test_reserved_namespaces_are_refused(column):
    problems = problems_for(column)
    assert len(problems) == 1 and "is reserved for the catalog output" in problems[0]


@pytest.mark.parametrize("column", ["Status", "STATUS", " key", "Qc_Flags", "Seed", "PROMPT"])
def test_names_that_differ_only_in_case_or_spaces_are_refused(column):
    assert problems_for(column), column


@pytest.mark.parametrize("column", ["caption_src", "score", "qcflags", "thumbnail", "my_hash"])
def test_other_columns_pass_through(column):
    assert problems_for(column) == []


def test_the_catalog_has_exactly_the_schemas_columns_in_order():
    rows = make_plan(validate(pa.table({"prompt": ["a"], "seed": [1], "caption": ["c"]})), 1).rows
    catalog = build_catalog(rows, schema.LEDGER_SCHEMA.empty_table(), ("caption",))
    assert tuple(catalog.column_names) == schema.catalog_columns(("caption",))
    # what is not a manifest input or a passthrough column is reserved
    written = [n for n in catalog.column_names if n not in (*schema.MANIFEST_COLUMNS, "caption")]
    assert tuple(written) == tuple(n for n in schema.WRITTEN_COLUMNS if n != schema.SELECTED)
    scored = build_catalog(
        rows,
        schema.LEDGER_SCHEMA.empty_table(),
        ("caption",),
        {"clip": schema.SCORE_LEDGER_SCHEMA.empty_table()},
    )
    assert tuple(scored.column_names) == schema.catalog_columns(("caption",), ("clip",))
    for name in scored.column_names:
        if name not in (*schema.MANIFEST_COLUMNS, "caption"):
            assert schema.reserved_reason(name), name


def test_schema_md_lists_the_reserved_columns_of_the_code():
    text = (REPO / "manifests" / "SCHEMA.md").read_text()
    listed = re.search(r"<!-- reserved-columns -->`([^`]*)`", text).group(1)
    assert tuple(listed.split(", ")) == schema.WRITTEN_COLUMNS
    for prefix in schema.RESERVED_PREFIXES:
        assert f"`{prefix}`" in text
