"""Media cells that are URLs (issue 16): images in a real S3-compatible server (moto on
127.0.0.1), and on a local HTTP server, which a manifest may only reach with
--allow-private-urls (a manifest is data from elsewhere). Actors fetch their own images."""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from tests.conftest import read_catalog, write_manifest
from tests.support.checkpoints import checkpoint_dir
from tests.support.media_files import png_rgb
from tests.support.s3 import BUCKET, fs_for, options, requests

SIZE = dict(height=32, width=32, num_frames=5, num_inference_steps=2)
FLAGS = ("--threads", "2", "--no-progress")


def i2v_row(row_id: str, image: str, seed: int) -> dict:
    model = str(checkpoint_dir("wan2.1-i2v"))
    return dict(id=row_id, prompt="a fox", seed=seed, image=image, model=model, **SIZE)


def test_images_in_a_bucket_validate_and_render(s3, ray_local, tmp_path):
    fs = fs_for(s3)
    image = png_rgb(tmp_path, 32, 32).read_bytes()
    fs.pipe_file(f"s3://{BUCKET}/media/first.png", image)
    rows = [i2v_row("abs", f"s3://{BUCKET}/media/first.png", 1), i2v_row("rel", "first.png", 2)]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    manifest, out = f"s3://{BUCKET}/media/m.parquet", f"s3://{BUCKET}/runs/media"
    fs.pipe_file(manifest, sink.getvalue())
    storage = ("--storage-options", json.dumps(options(s3)))
    before = len(requests(s3))
    assert main(["render", manifest, "--out", out, *storage, *FLAGS]) == 0
    fetched = [
        path for verb, path in requests(s3)[before:] if verb == "GET" and "first.png" in path
    ]
    catalog = fs.open(f"{out}/catalog.parquet", "rb").read()
    rows = {r["id"]: r for r in pq.read_table(io.BytesIO(catalog)).to_pylist()}
    assert {r["status"] for r in rows.values()} == {"ok"}
    # The relative cell resolved against the manifest's folder in the bucket.
    assert rows["rel"]["image"] == f"s3://{BUCKET}/media/first.png"
    assert rows["abs"]["image_sha256"] == rows["rel"]["image_sha256"]
    # Validation reads it once, each actor once (cached by content hash); never per row.
    assert 2 <= len(fetched) <= 3, fetched

    # A resume with nothing changed reads no image again (the run dir's hash cache).
    before = len(requests(s3))
    assert main(["render", manifest, "--out", out, *storage, *FLAGS]) == 0
    again = [path for verb, path in requests(s3)[before:] if verb == "GET" and "first.png" in path]
    assert again == []


@pytest.fixture
def http_server(tmp_path):
    """A plain HTTP server on 127.0.0.1 serving tmp_path/site."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


def test_private_urls_are_refused_unless_allowed(http_server, ray_local, tmp_path, capsys):
    site, base = http_server
    png_rgb(site, 32, 32, "frame.png")
    manifest = write_manifest(tmp_path / "m.parquet", [i2v_row("web", f"{base}/frame.png", 3)])
    capsys.readouterr()
    assert main(["validate", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "row 0 (id 'web'): image:" in err and "loopback address 127.0.0.1" in err, err
    assert "--allow-private-urls" in err

    out = tmp_path / "run"
    assert main(["render", str(manifest), "--out", str(out), "--allow-private-urls", *FLAGS]) == 0
    catalog = read_catalog(out)
    assert catalog["status"].to_pylist() == ["ok"]
    assert pc.equal(catalog["image"], f"{base}/frame.png").to_pylist() == [True]
