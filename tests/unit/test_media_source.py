"""read_media / stat_media / check_url: local files, and a real HTTP server on loopback.

s3:// is tested with the moto server elsewhere; here only local paths and http.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import replace

import pytest
from fsspec.implementations.local import LocalFileSystem

from pipeline.media import source
from pipeline.media.source import (
    MediaError,
    MediaLimits,
    MediaStat,
    check_url,
    read_media,
    sha256_hex,
    stat_media,
)
from tests.support import media_files as mf

LIMITS = MediaLimits()
LOOPBACK = replace(LIMITS, allow_private_urls=True)


def refusal(call, *args, **kwargs) -> MediaError:
    with pytest.raises(MediaError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- local ------------------------------------------------------------------------------


def test_local_read_and_stat(tmp_path):
    path = mf.png_rgb(tmp_path)
    data = path.read_bytes()
    assert read_media(str(path), LIMITS) == data
    assert read_media(f"file://{path}", LIMITS) == data
    stat = stat_media(str(path), LIMITS)
    assert stat == MediaStat(str(path), len(data), f"mtime:{path.stat().st_mtime_ns}")
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_missing_file(tmp_path):
    for call in (read_media, stat_media):
        error = refusal(call, str(tmp_path / "nope.png"), LIMITS)
        assert "no such file" in str(error) and not error.retriable


def test_a_directory_is_not_a_file(tmp_path):
    for call in (read_media, stat_media):
        error = refusal(call, str(tmp_path), LIMITS)
        assert "is a directory" in str(error) and not error.retriable


def test_over_max_bytes_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.truncate(LIMITS.max_bytes + 1)  # sparse: no disk used

    def no_open(*args, **kwargs):
        raise AssertionError("the file was opened")

    monkeypatch.setattr(LocalFileSystem, "_open", no_open)
    error = refusal(read_media, str(path), LIMITS)
    assert f"larger than the {LIMITS.max_bytes}-byte limit" in str(error)
    assert not error.retriable


def test_fsspec_store_stat_and_read():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe_file("/media-test/a.png", b"x" * 10)
    stat = stat_media("memory://media-test/a.png", LIMITS)
    assert stat.size == 10 and stat.version.startswith("modified:")
    assert read_media("memory://media-test/a.png", LIMITS) == b"x" * 10
    error = refusal(read_media, "memory://media-test/a.png", replace(LIMITS, max_bytes=9))
    assert "larger than the 9-byte limit (10 bytes)" in str(error)
    fs.rm("/media-test", recursive=True)


def test_messages_hide_credentials_and_queries():
    assert source.show_url("ftp://u:pw@host/a.png?sig=x") == "ftp://host/a.png?..."
    message = str(refusal(check_url, "http://127.0.0.1/a.png?X-Amz-Signature=s3cr3t", False))
    assert "s3cr3t" not in message and "http://127.0.0.1/a.png?..." in message


def test_unknown_scheme_and_chained_urls_are_refused():
    assert "unknown URL scheme 'nosuch'" in str(refusal(read_media, "nosuch://x/a.png", LIMITS))
    error = refusal(check_url, "simplecache::http://169.254.169.254/a.png", True)
    assert "chained" in str(error)
    check_url("/some/local/path.png", False)  # paths and known schemes pass
    check_url("s3://bucket/a.png", False)


# --- check_url ----------------------------------------------------------------------------

PRIVATE_URLS = [
    "http://127.0.0.1/",
    "http://localhost/",
    "http://[::1]/",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/",
    "https://172.16.0.1:8443/a.png",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_check_url_refuses_private_addresses(url):
    error = refusal(check_url, url, False)
    assert "--allow-private-urls" in str(error) and not error.retriable
    check_url(url, True)


def test_refusal_names_the_url_and_address():
    message = str(refusal(check_url, "http://169.254.169.254/latest/meta-data", False))
    assert "http://169.254.169.254/latest/meta-data" in message
    assert "link-local address 169.254.169.254" in message


def test_any_private_address_of_a_name_refuses_it(monkeypatch):
    monkeypatch.setattr(source, "resolve_host", lambda host, port: ["93.184.216.34", "10.1.2.3"])
    assert "private address 10.1.2.3" in str(refusal(check_url, "https://cdn.test/a.png", False))
    monkeypatch.setattr(source, "resolve_host", lambda host, port: ["93.184.216.34"])
    check_url("https://cdn.test/a.png", False)


def test_check_url_refuses_credentials_and_hides_them():
    message = str(refusal(check_url, "http://user:secret@93.184.216.34/a.png", True))
    assert "credentials" in message and "secret" not in message


# --- a real HTTP server on loopback ----------------------------------------------------------


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    png = b""
    release: threading.Event
    paths: list


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args):  # keep pytest output clean
        pass

    def send(self, code, body=b"", length=True, **headers):
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        if self.path == "/no-head":
            self.server.paths.append(self.path)
            return self.send(405)
        self.do_GET()

    def do_GET(self):
        self.server.paths.append(self.path)
        port = self.server.server_address[1]
        routes = {
            "/image.png": lambda: self.send(200, self.server.png, ETag='"v1"'),
            "/no-head": lambda: self.send(200, b"abc", Last_Modified="Mon, 1 Jan 2024"),
            "/redirect": lambda: self.send(302, Location="/image.png"),
            "/to-metadata": lambda: self.send(302, Location="http://169.254.169.254/latest/"),
            "/to-loopback": lambda: self.send(302, Location=f"http://127.0.0.1:{port}/image.png"),
            "/loop": lambda: self.send(302, Location="/loop"),
            "/to-file": lambda: self.send(302, Location="file:///etc/passwd"),
            "/missing": lambda: self.send(404),
            "/busy": lambda: self.send(503),
            "/endless": lambda: self.send(
                200, bytes(5000), length=False
            ),  # HTTP/1.0: ends at close
            "/hang": self.server.release.wait,  # never answers until teardown
        }
        routes.get(self.path, lambda: self.send(404))()


@pytest.fixture
def server(tmp_path):
    srv = Server(("127.0.0.1", 0), Handler)
    srv.png = mf.png_rgb(tmp_path).read_bytes()
    srv.release = threading.Event()
    srv.paths = []
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join()


def url(srv: Server, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def test_http_read_with_the_flag(server):
    assert read_media(url(server, "/image.png"), LOOPBACK) == server.png


def test_http_refused_without_the_flag(server):
    error = refusal(read_media, url(server, "/image.png"), LIMITS)
    assert "--allow-private-urls" in str(error) and not error.retriable
    assert server.paths == []  # refused before connecting


def test_http_stat_uses_head(server):
    stat = stat_media(url(server, "/image.png"), LOOPBACK)
    assert stat == MediaStat(url(server, "/image.png"), len(server.png), 'etag:"v1"')


def test_http_stat_falls_back_to_get_without_head(server):
    stat = stat_media(url(server, "/no-head"), LOOPBACK)
    assert stat == MediaStat(url(server, "/no-head"), 3, "modified:Mon, 1 Jan 2024")
    assert server.paths == ["/no-head", "/no-head"]


def test_redirect_is_followed_when_allowed(server):
    assert read_media(url(server, "/redirect"), LOOPBACK) == server.png
    assert server.paths == ["/redirect", "/image.png"]


@pytest.fixture
def trust_first_hop(monkeypatch):
    """vet_url that lets one URL through (as a public one would pass) and vets every other
    hop for real, without the flag; returns the list of hops it was asked about."""
    checked, trusted, real = [], [], source.vet_url

    def vet(hop, allow_private):
        checked.append(hop)
        return real(hop, True) if hop in trusted else real(hop, allow_private)

    monkeypatch.setattr(source, "vet_url", vet)
    return trusted, checked


def test_every_redirect_hop_is_checked(server, trust_first_hop):
    trusted, checked = trust_first_hop
    trusted.append(url(server, "/to-loopback"))
    error = refusal(read_media, trusted[0], LIMITS)
    assert checked == [trusted[0], url(server, "/image.png")]
    assert "loopback address 127.0.0.1" in str(error) and not error.retriable
    assert server.paths == ["/to-loopback"]  # the second hop was never requested


def test_a_redirect_to_the_metadata_address_is_refused(server, trust_first_hop):
    trusted, checked = trust_first_hop
    trusted.append(url(server, "/to-metadata"))
    error = refusal(read_media, trusted[0], LIMITS)
    assert checked == [trusted[0], "http://169.254.169.254/latest/"]
    assert "link-local address 169.254.169.254" in str(error) and not error.retriable


def test_redirect_limits(server):
    error = refusal(read_media, url(server, "/loop"), LOOPBACK)
    assert "more than 5 redirects" in str(error) and not error.retriable
    assert len(server.paths) == 6
    error = refusal(read_media, url(server, "/to-file"), LOOPBACK)
    assert "non-http(s)" in str(error) and not error.retriable


def test_404_is_not_retriable_and_503_is(server):
    error = refusal(read_media, url(server, "/missing"), LOOPBACK)
    assert "HTTP 404" in str(error) and not error.retriable
    error = refusal(read_media, url(server, "/busy"), LOOPBACK)
    assert "HTTP 503" in str(error) and error.retriable


def test_a_body_over_max_bytes_is_cut(server):
    limits = replace(LOOPBACK, max_bytes=1000)
    error = refusal(read_media, url(server, "/endless"), limits)
    assert "larger than the 1000-byte limit (cut at the limit)" in str(error)
    assert not error.retriable


def test_a_declared_length_over_max_bytes_is_refused_before_reading(server):
    limits = replace(LOOPBACK, max_bytes=50)  # /image.png declares its length
    error = refusal(read_media, url(server, "/image.png"), limits)
    assert f"larger than the 50-byte limit ({len(server.png)} bytes)" in str(error)


def test_a_server_that_never_answers_times_out_retriably(server):
    limits = replace(LOOPBACK, timeout_s=0.5)
    error = refusal(read_media, url(server, "/hang"), limits)
    assert "timed out" in str(error) and error.retriable


def test_connection_refused_is_retriable():
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    srv.server_close()  # nothing listens on the port now
    error = refusal(read_media, f"http://127.0.0.1:{port}/a.png", LOOPBACK)
    assert error.retriable
