"""Cells that hold a list (LoRA adapters, VACE reference images): a Parquet/JSONL list,
the same list as JSON text (CSV cells, flags), or one bare value standing for a list of it."""

from __future__ import annotations

import json


def list_cell(value, expected: str) -> list | None:
    """The cell as a list, or None when blank or null; ValueError saying what was expected.
    A single object (a Parquet struct) is a list of it."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not text.startswith("["):
            return [text]
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{expected}; the JSON list does not parse: {exc}") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(expected)
    return value
