"""`--to webdataset`: tar shards `00000.tar`, ... of `--shard-size` samples.

Each sample is `KEY.json` (its catalog row, seeds as text), `KEY.<ext>` (the clip),
`KEY.txt` (the prompt) and, for media rows, `KEY.image.png` / `KEY.last_image.png` (the
images as the model got them); KEY is the zero-padded ordinal among exported rows: WebDataset
and `datasets` split a member name at its first dot, so a prompt or an id can't be a key.
Beside each shard, its rows as `00000.parquet` (catalog types, seeds exact as uint64)
and `00000_stats.json`, written last: the shard's completion marker, as video2dataset
does. `export.json` (every shard and its sample count) is written after all shards.
Tar members carry fixed metadata (mtime 0, uid 0, mode 0644), so the same catalog gives
the same shard bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export.naming import webdataset_key
from pipeline.export.options import ExportOptions, ExportPlan
from pipeline.export.source import Clip, Source
from pipeline.export.units import Conflict, IndexUnit, Unit

KEY_COLUMN = "__key__"  # WebDataset's name for a sample's key


def shard_name(index: int) -> str:
    return f"{index:05d}"


def rows_digest(clips: list[Clip]) -> str:
    """What decides a shard's content: its rows, their clips and their order."""
    digest = hashlib.sha256()
    for clip in clips:
        digest.update(
            f"{clip.ordinal}\t{clip.id}\t{clip.key}\t{clip.row['sha256']}\t{clip.ext}\n".encode()
        )
    return digest.hexdigest()


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _file_sha256(path: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True, eq=False)
class Shard(Unit):
    index: int
    clips: tuple[Clip, ...]
    rows: pa.Table  # the shard's catalog rows, with the sample keys
    source: Source
    tar: str
    parquet: str
    stats: str

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.tar, self.parquet, self.stats)

    @property
    def bytes(self) -> int:
        return sum(clip.row["bytes"] for clip in self.clips)

    @property
    def digest(self) -> str:
        return rows_digest(list(self.clips))

    def complete(self, listing, dest) -> bool:
        if self.stats not in listing:
            return False  # a tar or parquet without stats is a shard cut short: rewritten
        try:
            recorded = json.loads(dest.read_bytes(self.stats) or b"{}").get("rows_sha256")
        except ValueError:
            recorded = None
        if recorded != self.digest:
            raise Conflict(self.stats, "records other rows than this export puts in the shard")
        return True

    def write(self, dest) -> None:
        with dest.staged(self.tar) as staging:
            with tarfile.open(staging, "w", format=tarfile.USTAR_FORMAT) as tar:
                for clip in self.clips:
                    key = webdataset_key(clip.ordinal)
                    row = self.source.json_row(clip.row)
                    _member(tar, f"{key}.json", json.dumps(row, ensure_ascii=False).encode())
                    _member(tar, f"{key}.{clip.ext}", self.source.read_clip(clip))
                    _member(tar, f"{key}.txt", (clip.row["prompt"] or "").encode())
                    for name in self.source.input_names(clip):
                        _member(tar, f"{key}.{name}.png", self.source.read_input(clip, name))
            tar_sha256, tar_bytes = _file_sha256(staging)
        sink = io.BytesIO()
        pq.write_table(self.rows, sink, compression="zstd")
        dest.write_bytes(self.parquet, sink.getvalue())
        stats = {
            "shard": shard_name(self.index),
            "count": len(self.clips),
            "first_key": webdataset_key(self.clips[0].ordinal),
            "last_key": webdataset_key(self.clips[-1].ordinal),
            "clip_bytes": self.bytes,
            "tar_bytes": tar_bytes,
            "tar_sha256": tar_sha256,
            "rows_sha256": self.digest,
        }
        dest.write_bytes(self.stats, json.dumps(stats, indent=2).encode())


def plan(source: Source, dest, options: ExportOptions) -> ExportPlan:
    clips = source.clips
    table = source.ok_table()
    keys = pa.array([webdataset_key(clip.ordinal) for clip in clips], pa.string())
    table = table.add_column(0, KEY_COLUMN, keys)
    size = options.shard_size
    shards = []
    for index, start in enumerate(range(0, len(clips), size)):
        name = shard_name(index)
        shards.append(
            Shard(
                index=index,
                clips=tuple(clips[start : start + size]),
                rows=table.slice(start, size),
                source=source,
                tar=dest.path(f"{name}.tar"),
                parquet=dest.path(f"{name}.parquet"),
                stats=dest.path(f"{name}_stats.json"),
            )
        )
    index = {
        "format": "webdataset",
        "samples": len(clips),
        "shard_size": size,
        "shards": [
            {"url": f"{shard_name(s.index)}.tar", "nsamples": len(s.clips), "rows_sha256": s.digest}
            for s in shards
        ],
        "left_out": source.left_out(),
    }
    final = IndexUnit(dest.path("export.json"), json.dumps(index, indent=2).encode())
    return ExportPlan(shards, final)
