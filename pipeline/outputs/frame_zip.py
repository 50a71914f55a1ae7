"""`--format png`: one zip per clip holding 00000.png, 00001.png, ... (stored, not deflated:
PNG is compressed already). Member timestamps and attributes are fixed so the same frames
give the same archive bytes."""

from __future__ import annotations

import io
import zipfile

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
MEMBER_MODE = 0o100644 << 16  # a regular file, rw-r--r--


def pack(members: list[tuple[str, bytes]]) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = MEMBER_MODE
            info.create_system = 3  # unix, whatever system wrote it
            archive.writestr(info, data)
    return sink.getvalue()


def unpack(data: bytes) -> dict[str, bytes]:
    """Member name -> bytes, in name order (frame order)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in sorted(archive.namelist())}


def is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"
