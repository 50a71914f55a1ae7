"""Reading manifests from where they are: here, a pipe."""

from __future__ import annotations

import gzip
import os
import threading

import pytest

from pipeline.plan.readers import read_manifest


@pytest.mark.parametrize("name", ["m.csv", "m.csv.gz"])
def test_a_manifest_on_a_pipe_is_read_to_its_end(tmp_path, name):
    """A FIFO (or `<(zcat ...)`) cannot seek: it is read as a stream, then decompressed."""
    fifo = tmp_path / name
    os.mkfifo(fifo)
    data = b"prompt,seed\na cat,1\na dog,2\n"
    data = gzip.compress(data) if name.endswith(".gz") else data

    def write():
        with open(fifo, "wb") as handle:  # blocks until the reader opens the FIFO
            handle.write(data[:5])
            handle.flush()
            handle.write(data[5:])

    writer = threading.Thread(target=write)
    writer.start()
    table = read_manifest(str(fifo))
    writer.join()
    assert table.column("prompt").to_pylist() == ["a cat", "a dog"]
