"""Frozen settings for a run. Every default lives here, in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RenderSettings:
    """What decides the pixels beyond the request itself (part of the job fingerprint)."""

    model: str = "tiny"
    batch_size: int = 4
    threads: int = 2  # torch threads per render actor: pinned, it changes pixels
    dtype: str = "float32"
    device: str = "cpu"
    # GPU options for real checkpoints; all recorded in the fingerprint (see docs/design.md).
    compile: bool = False  # regional torch.compile of the transformer's repeated blocks
    offload: str = "none"  # "model" | "sequential" | "none"
    vae_tiling: bool = False
    # Reuse text embeddings of repeated prompts inside an actor (pixel-identical).
    embedding_cache: int = 256
    # Speed lanes (pipeline/models/lanes.py); None is the exact lane. The cache is kept in
    # its canonical spelling ("first-block:0.05"): it is part of every key.
    attention_backend: str | None = None
    cache: str | None = None
    quantize: str | None = None  # torchao weight quantization of the transformer(s)

    def fingerprint_fields(self) -> dict:
        fields = dataclasses.asdict(self)
        fields.pop("embedding_cache")  # does not change pixels
        fields.pop("model")  # replaced by the model's content fingerprint
        for lane in ("attention_backend", "cache", "quantize"):  # absent when exact
            if fields[lane] is None:
                fields.pop(lane)
        return fields


@dataclass(frozen=True)
class EncodeSettings:
    """What decides the clip bytes given the frames (part of the job fingerprint)."""

    format: str = "mp4"
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    crf: int = 18
    preset: str = "medium"
    # x264's output depends on its thread count: pinned so bytes are reproducible.
    threads: int = 1
    # Keep the sound of families that render it (mp4: AAC, webm: Opus); --no-audio drops it.
    audio: bool = True

    def fingerprint_fields(self) -> dict:
        fields = dataclasses.asdict(self)
        if fields["audio"]:  # absent when kept: run dirs from before sound stay valid
            fields.pop("audio")
        return fields


@dataclass(frozen=True)
class ClusterSettings:
    """Where and how wide to run; never changes pixels."""

    address: str | None = None
    actors: int | None = 1  # None: `--actors auto`, sized by pipeline/driver/sizing.py
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0
    encode_workers: int = 2  # concurrent ffmpeg encodes per render actor
    batches_in_flight: int = 2  # per actor: one rendering, one encoding
    # An actor with work but no result for this long is presumed hung and replaced (0: never).
    batch_timeout_s: float = 3600.0


@dataclass(frozen=True)
class ScoreSettings:
    """Scorers run on finished clips in their own actors (pipeline/driver/scoring.py).
    Never in the fingerprint: scores never change pixels, and can be added later."""

    scorers: tuple[tuple[str, str | None], ...] = ()  # (name, location) per --score
    cpus: float = 1.0  # per scoring actor
    gpus: float = 0.0
    batch_size: int = 8  # clips per scoring call
    # Best of N (pipeline/score/selection.py): --keep K --by NAME, --min-score NAME=VALUE.
    keep: int | None = None
    by: str | None = None
    min_scores: tuple[tuple[str, float], ...] = ()
    # Render until good (pipeline/score/until.py): "NAME>=VALUE", up to max_variants.
    until: str | None = None
    max_variants: int = 4


@dataclass(frozen=True)
class MediaLimits:
    """Limits on each media cell (image, last_image), checked before any GPU time and again
    where actors fetch. Not in the job fingerprint: they refuse inputs, never move pixels."""

    max_bytes: int = 50 * 2**20  # per file
    max_pixels: int = 40_000_000  # width * height, read from the header: bombs never decode
    min_side: int = 16  # a 1x1 image is a mistake, not a first frame
    timeout_s: float = 30.0  # connect and read, per fetch
    max_redirects: int = 5
    # http(s) URLs resolving to loopback, private or link-local addresses (a cloud's
    # metadata service) are refused unless this is set (--allow-private-urls).
    allow_private_urls: bool = False


@dataclass(frozen=True)
class RunConfig:
    manifest: str
    out: str
    render: RenderSettings = field(default_factory=RenderSettings)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    storage_options: dict = field(default_factory=dict)
    max_retries: int = 2
    retry_failed: bool = False
    strict_seeds: bool = False
    # Renders per manifest row where its `variants` cell is blank (pipeline/plan/variants.py).
    # Not in the fingerprint: each variant is its own request; more variants add requests.
    variants: int = 1
    # Resume a run dir rendered with other torch/diffusers/transformers (rundir/jobjson.py).
    allow_version_change: bool = False
    flush_interval_s: float = 30.0
    progress: bool = True
    # QC of each clip's frames: "flag" records scores and flags, "fail" also fails flagged
    # rows, "off" skips it. Not in the job fingerprint: it changes statuses, never pixels.
    qc: str = "flag"
    report_interval_s: float = 300.0  # report.html is rewritten this often during a run
    # Test-only fault injection, e.g. "crash:<prompt>" (see pipeline/actor/faults.py).
    faults: tuple[str, ...] = ()
    # No batch starts that could not finish by then (epoch seconds; pipeline/driver/stopping.py).
    deadline: float | None = None
    # After SIGINT/SIGTERM, in-flight batches get this long to finish, then are abandoned.
    stop_grace_s: float = 120.0
    media: MediaLimits = field(default_factory=MediaLimits)
    scores: ScoreSettings = field(default_factory=ScoreSettings)
    # How a media row's image is fitted to its size when the row has no `resize` cell
    # (pipeline/media/fit.py); recorded per row in the key, so not in the fingerprint.
    resize: str = "crop"
    # --lora: adapters for rows without a `lora` cell (pipeline/plan/lora_rows.py); each
    # row's adapters are in its key, so not in the fingerprint either.
    lora: str | None = None
