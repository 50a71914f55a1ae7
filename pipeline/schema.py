"""Every column promptreel reads or writes, in one place.

- manifest inputs: what a manifest may give (request fields, `id`, `priority`);
- request fields: what decides an item (the key hashes them, with the model fingerprint);
- result columns: what a worker reports per item and the ledger keeps (typed here);
- catalog order: request columns, then results, then the manifest's passthrough columns.

Reserved names are derived from these lists, never kept by hand: a manifest column that
would land on a column promptreel writes (or on a namespace it will write, RESERVED_PREFIXES)
is refused at validate. manifests/SCHEMA.md documents the rule.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.models.families import PARAM_NAMES as FAMILY_PARAM_NAMES

# Torch's CPU generator (mt19937) uses only the low 32 bits of a seed; keys use this.
SEED_SPACE = 2**32
MAX_SEED = 2**64 - 1

# --- manifest inputs --------------------------------------------------------------------
INT_PARAMS = ("height", "width", "num_frames", "num_inference_steps")
FLOAT_PARAMS = ("fps", "guidance_scale")
PARAM_COLUMNS = ("height", "width", "num_frames", "fps", "num_inference_steps", "guidance_scale")
# Family-specific per-row parameters (guidance_scale_2, decode_timestep, ...): one column
# each, null for rows whose family does not take it (pipeline/models/families/).
FAMILY_PARAM_COLUMNS = FAMILY_PARAM_NAMES
# Media inputs of conditioned families (image-to-video, first-and-last frame, video-to-video):
# each cell a local path or any fsspec URL. The key hashes their content (MEDIA_HASH_COLUMNS),
# never the URL; `resize` says how an image (or each video frame) is fitted to the row's
# size (pipeline/media/fit.py). VIDEO_COLUMNS hold videos (pipeline/media/video.py).
MEDIA_COLUMNS = ("image", "last_image", "video", "mask")
VIDEO_COLUMNS = ("video", "mask")  # mask: VACE's per-frame mask, a video too
MEDIA_HASH_SUFFIX = "_sha256"
MEDIA_HASH_COLUMNS = tuple(name + MEDIA_HASH_SUFFIX for name in MEDIA_COLUMNS)
RESIZE = "resize"
# LoRA adapters of a row (pipeline/plan/lora_rows.py): validated to canonical JSON text,
# [{"uri", "scale", "sha256"}, ...]; the key hashes each adapter's content and scale.
LORA = "lora"
# VACE's reference images of a row (pipeline/plan/reference_rows.py): validated to canonical
# JSON text, [{"uri", "sha256"}, ...]; the key hashes each image's content, in order.
REFERENCE_IMAGES = "reference_images"
# What decides an item (with the model's fingerprint); the key hashes these (media by content).
REQUEST_FIELDS = ("prompt", "negative_prompt", "seed", "model", *PARAM_COLUMNS)
REQUEST_FIELDS += (*FAMILY_PARAM_COLUMNS, *MEDIA_COLUMNS, RESIZE, LORA, REFERENCE_IMAGES)
REQUEST_COLUMNS = ("id", *REQUEST_FIELDS)  # what a manifest row asks for
PRIORITY = "priority"  # orders dispatch only: never in the key or the composition
# Renders of each row (best of N, plan/variants.py): variant i asks for seed + i. The count
# is not part of any request; each variant's request (its seed) is.
VARIANTS = "variants"
MAX_VARIANTS = 10_000
MANIFEST_COLUMNS = (*REQUEST_COLUMNS, PRIORITY, VARIANTS)  # every column a manifest may give
# Read as text from CSV and JSONL, so ids like "007" and seeds above 2**63 stay exact.
TEXT_COLUMNS = ("id", "prompt", "negative_prompt", "seed", "model", *MEDIA_COLUMNS, RESIZE)
TEXT_COLUMNS += (LORA, REFERENCE_IMAGES)  # a JSONL list arrives as its JSON text
# The validated table: manifest row number, the request, then passthrough columns.
ROW = "row"
VALIDATED_COLUMNS = (ROW, "id", "prompt", "negative_prompt", "seed", "model")
VALIDATED_COLUMNS += (*INT_PARAMS, *FLOAT_PARAMS, *FAMILY_PARAM_COLUMNS)
VALIDATED_COLUMNS += (*MEDIA_COLUMNS, RESIZE, *MEDIA_HASH_COLUMNS, LORA, REFERENCE_IMAGES)

# --- plan -----------------------------------------------------------------------------
KEY = "key"
ITEM_FIELDS = (KEY, *REQUEST_FIELDS, *MEDIA_HASH_COLUMNS)  # one distinct request
# Parameters one pipeline call takes for the whole batch; items in a batch share them.
BUCKET_FIELDS = ("model", "height", "width", "num_frames", "num_inference_steps", "guidance_scale")
BUCKET_FIELDS += (*FAMILY_PARAM_COLUMNS, LORA)  # one adapter set per pipeline call
# fps where the family's call takes it (LTX-2's frame_rate: families.base `call_fps`), else
# null: derived by the planner, so other families' batches are composed as before.
CALL_FPS = "call_fps"
BUCKET_FIELDS += (CALL_FPS,)

# --- results (ledger), in catalog order -----------------------------------------------
QC_SCORE_COLUMNS = (
    ("qc_luma_mean", pa.float64()),  # mean luma of the clip
    ("qc_luma_std", pa.float64()),  # luma std over all (subsampled) pixels of the clip
    ("qc_black_frames", pa.int32()),
    ("qc_white_frames", pa.int32()),
    ("qc_flat_frames", pa.int32()),
    ("qc_motion", pa.float64()),  # mean |frame - previous frame| (null for one frame)
    ("qc_flicker", pa.float64()),  # see outputs/qc.py scores() (null under three frames)
    ("qc_audio_rms_dbfs", pa.float64()),  # loudness of the sound (null: no sound)
    ("qc_audio_clipped", pa.float64()),  # share of samples at full scale (null: no sound)
)
QC_FLAGS = "qc_flags"
QC_REPORTED = ("qc_luma_mean", "qc_luma_std", "qc_motion", "qc_flicker")  # report.html's table
QC_FIELDS = (*QC_SCORE_COLUMNS, (QC_FLAGS, pa.list_(pa.string())))
# A clip's sound (families that render one, unless --no-audio): null for silent families.
AUDIO_FIELDS = (
    ("audio_sha256", pa.string()),  # of the float32 samples (channels, n) as rendered
    ("audio_sample_rate", pa.int32()),
    ("audio_channels", pa.int32()),
    ("audio_duration_s", pa.float64()),
)
# The item's planned batch (plan/composition.py) and whether it was rendered outside it
# (alone, after a retry in its planned batch failed too).
BATCH_FIELDS = (("batch_id", pa.string()), ("batch_pos", pa.int32()), ("isolated", pa.bool_()))
LEDGER_SCHEMA = pa.schema(
    [
        (KEY, pa.string()),
        ("status", pa.string()),  # "ok" | "failed" (the catalog adds "pending")
        ("error", pa.string()),
        ("attempts", pa.int32()),
        ("uri", pa.string()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("frames_sha256", pa.string()),
        *AUDIO_FIELDS,
        ("render_s", pa.float64()),
        ("encode_s", pa.float64()),
        ("finished_at", pa.string()),
        *BATCH_FIELDS,
        *QC_FIELDS,
    ]
)
# What a worker reports for one item (the driver adds attempts and the batch columns).
WORKER_RESULT_COLUMNS = tuple(
    name for name in LEDGER_SCHEMA.names if name not in ("attempts", *dict(BATCH_FIELDS))
)
RESULT_COLUMNS = tuple(name for name in LEDGER_SCHEMA.names if name != KEY)

# --- scores (best of N): one ledger per scorer, _state/scores/<name> -------------------------
SCORE_PREFIX = "score_"  # catalog column score_<name> per scorer the run has
SCORE_ERRORS = "score_errors"  # "<name>: <error>" per scorer that failed on the clip
SELECTED = "selected"  # kept by --keep/--min-score/--until (null: no selection asked for)
SCORE_PASSED = "score_passed"  # --until: the row has a passing variant (null: still open)
SCORE_LEDGER_SCHEMA = pa.schema(
    [
        (KEY, pa.string()),
        ("value", pa.float64()),  # null when the scorer failed on this clip
        ("error", pa.string()),
        ("scorer_id", pa.string()),  # the scorer's checkpoint sha and settings (job.json)
        ("sha256", pa.string()),  # of the clip scored: a re-rendered clip is scored again
        ("scored_at", pa.string()),
    ]
)


def score_columns(names: tuple[str, ...]) -> tuple[str, ...]:
    """The catalog's score columns for the run's scorers (none: no column at all)."""
    if not names:
        return ()
    return (*(SCORE_PREFIX + name for name in names), SCORE_ERRORS, SELECTED)


# --- catalog --------------------------------------------------------------------------
# Each catalog row is one variant of a manifest row: `source_id` names the row (its id),
# `variant` is 0..N-1 (0 is the row itself, with the row's id).
VARIANT_FIELDS = (("source_id", pa.string()), ("variant", pa.int32()))
CATALOG_REQUEST_COLUMNS = ("id", *dict(VARIANT_FIELDS), KEY, *REQUEST_FIELDS, *MEDIA_HASH_COLUMNS)


def catalog_columns(passthrough: tuple[str, ...] = (), scores: tuple[str, ...] = ()) -> tuple:
    """The catalog's columns, in order (`scores`: the run's scorer names)."""
    return (*CATALOG_REQUEST_COLUMNS, *RESULT_COLUMNS, *score_columns(scores), *passthrough)


# --- reserved names -------------------------------------------------------------------
# Columns promptreel writes that a manifest must not give (a passthrough column of that
# name would replace ours in the catalog): every catalog column that is not an input.
# (A scored run's columns: score_<name> fall under the score_ prefix below; `selected` not.)
WRITTEN_COLUMNS = tuple(
    name
    for name in catalog_columns(scores=("<name>",))
    if name not in MANIFEST_COLUMNS and not name.startswith(SCORE_PREFIX)
)
RESERVED_COLUMNS = (ROW, *WRITTEN_COLUMNS)
# Namespaces for columns promptreel writes now or will (QC, scores, thumbnails, media
# inputs' hashes): a manifest column in one of them is refused too.
RESERVED_PREFIXES = ("qc_", "score_", "thumb_", "media_")
RESERVED_SUFFIXES = ("_sha256",)


def reserved_reason(name: str) -> str | None:
    """Why a manifest column `name` is refused (None when it is free). Names are compared
    case-insensitively: DuckDB, Spark and Hive read `Status` and `status` as one column."""
    folded = name.strip().casefold()
    if folded in (n.casefold() for n in MANIFEST_COLUMNS):
        return (
            None if folded == name else f"differs from {_closest(folded)!r} only in case or spaces"
        )
    if folded == ROW:
        return "is reserved for the manifest row number"
    if folded in RESERVED_COLUMNS:
        return "is reserved for the catalog output"
    for prefix in RESERVED_PREFIXES:
        if folded.startswith(prefix):
            return f"is reserved for the catalog output (promptreel writes the {prefix}* columns)"
    for suffix in RESERVED_SUFFIXES:
        if folded.endswith(suffix):
            return f"is reserved for the catalog output (promptreel writes the *{suffix} columns)"
    return None


def _closest(folded: str) -> str:
    return next(n for n in MANIFEST_COLUMNS if n.casefold() == folded)


def free_name(name: str) -> str:
    """A name to suggest for a refused manifest column: one that is free."""
    stem = name.strip()
    for candidate in (f"user_{stem}", f"user_{stem.casefold().replace('sha256', 'digest')}"):
        if reserved_reason(candidate) is None:
            return candidate
    return "user_column"
