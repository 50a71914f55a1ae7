"""`promptreel models`: the supported families, their rules, defaults and extra parameters.

Everything printed comes from the adapters in pipeline/models/families/, so this page
cannot drift from what validate enforces.
"""

from __future__ import annotations

import json

from pipeline.models.families import BUILTIN, FAMILIES, Family

HELP = "supported model families: pipeline classes, shape rules, defaults, extra row params"


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "models",
        help=HELP,
        description=HELP + ". A manifest row's `model` (or --model) picks the family; "
        "its extra parameters are manifest columns (null or absent: the family default).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--all", action="store_true", help="also the built-in tiny and null")


def describe(family: Family) -> dict:
    return {
        "family": family.name,
        "title": family.title,
        "pipeline_classes": list(family.pipeline_classes),
        "rules": family.rules_text(),
        "defaults": dict(family.defaults),
        "params": {
            p.name: {"default": p.default, "expected": p.expected, "help": p.help}
            for p in family.params
        },
        "media_inputs": list(family.media_inputs),
        "media_required": list(family.media_required),
        "default_batch_size": family.default_batch_size,
        "batch_size_why": family.batch_size_why,
        "batch_pixel_safe": family.batch_pixel_safe,
        "recommended_dtype": family.dtype,
        "speed_lanes": list(family.lanes),
        "hub_id_hints": list(family.hub_hints),
        "notes": family.notes,
    }


def cmd_models(args) -> int:
    shown = [f for f in FAMILIES.values() if args.all or f.name not in BUILTIN]
    if args.json:
        print(json.dumps([describe(f) for f in shown], indent=2))
        return 0
    for family in shown:
        d = family.defaults
        print(f"{family.name}: {family.title}")
        print(f"  pipeline classes: {', '.join(family.pipeline_classes) or '-'}")
        print(f"  rules:    {family.rules_text()}")
        print(
            f"  defaults: {d['height']}x{d['width']}, {d['num_frames']} frames at {d['fps']:g} "
            f"fps, {d['num_inference_steps']} steps, guidance {d['guidance_scale']:g}, "
            f"negative prompt {'set' if d['negative_prompt'] else 'empty'}"
        )
        for p in family.params:
            print(f"  param {p.name} (default {p.default:g}; {p.expected}): {p.help}")
        if family.media_inputs:
            needs = ", ".join(family.media_required) or "none"
            print(f"  media:    {', '.join(family.media_inputs)} (required: {needs})")
        print(f"  batch size: {family.default_batch_size} ({family.batch_size_why})")
        lanes = ", ".join(family.lanes) or "none"
        print(f"  speed lanes: {lanes} (flags: --attention-backend, --cache KIND, --quantize)")
        print(f"  dtype: {family.dtype}" + (f"; {family.notes}" if family.notes else ""))
    print("\nMore: docs/models.md (memory flags, what changes pixels).")
    return 0
