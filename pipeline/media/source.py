"""Where media bytes come from: a local path or any fsspec URL, read whole but bounded.

http(s) goes through urllib (stdlib) with our own redirect loop, so that every hop is
vetted: a manifest is data from elsewhere, and a URL (or a redirect) pointing at
loopback, a private network or the cloud metadata address (169.254.169.254) is refused
unless the user passes `--allow-private-urls`. The TCP connection goes to the addresses
that were vetted, never to a second DNS answer (DNS rebinding). Environment proxies are
not used: a proxy would resolve the host itself and make the vetting meaningless.
Everything else goes through fsspec, opened as `pipeline.rundir.storage.open_fs` does (not
imported: media sits below rundir in the layers, as manifest validation uses it).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import http.client
import ipaddress
import os
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import fsspec
import fsspec.core
from fsspec.implementations.local import LocalFileSystem

from pipeline.config import MediaLimits  # noqa: F401 - part of this module's API
from pipeline.errors import PromptreelError

PRIVATE_FLAG = "--allow-private-urls"
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
RETRIABLE_4XX = frozenset({408, 425, 429})  # "try again later" in 4xx clothing
CHUNK = 1 << 20
# errnos worth another attempt; the rest (ENAMETOOLONG, ELOOP, ...) will fail again.
TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET})
# Address classes refused without the flag, by ipaddress property, most telling first.
REFUSED_CLASSES = (
    ("is_loopback", "loopback"), ("is_unspecified", "unspecified"),
    ("is_link_local", "link-local"), ("is_multicast", "multicast"),
    ("is_private", "private"), ("is_reserved", "reserved"),
)  # fmt: skip
# fs.info() keys that change with the content, per store (s3fs, gcsfs, memory, ...).
VERSION_KEYS = (
    ("etag", "etag"), ("lastmodified", "modified"), ("last_modified", "modified"),
    ("updated", "modified"), ("mtime", "modified"), ("created", "modified"),
)  # fmt: skip


class MediaError(PromptreelError):
    """A media cell that cannot be used. `retriable`: a later attempt may succeed (timeouts,
    5xx, connection resets); False for missing files, refused addresses, bad data."""

    def __init__(self, message: str, retriable: bool = False):
        self.retriable = retriable
        super().__init__(message)


@dataclass(frozen=True)
class MediaStat:
    url: str
    size: int  # -1 when the store does not say
    version: str  # "mtime:<ns>", "etag:<v>" or "modified:<v>"; "" when the store gives none


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def show_url(url: str) -> str:
    """The URL for messages: no userinfo, no query (presigned URLs carry signatures)."""
    shown = url
    if "://" in url:
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        shown = f"{parts.scheme}://{host}{parts.path}" + ("?..." if parts.query else "")
    return shown if len(shown) <= 200 else shown[:197] + "..."


def is_http(url: str) -> bool:
    return url[:8].lower().startswith(("http://", "https://"))


# --- address vetting -----------------------------------------------------------------


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests replace this to fake DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64), which is what is reached."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def address_refusal(ip: str) -> str | None:
    """Why `ip` must not be fetched from without the flag ("loopback", ...), or None."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 scope id
    if isinstance(addr, ipaddress.IPv6Address):
        addr = _embedded_v4(addr) or addr
    for attr, label in REFUSED_CLASSES:
        if getattr(addr, attr):
            return label
    return None if addr.is_global else "non-public"  # e.g. 100.64.0.0/10 (carrier NAT)


def vet_url(url: str, allow_private: bool) -> tuple[str, ...]:
    """check_url's work; returns the vetted addresses of an http(s) URL (empty otherwise)."""
    if not is_http(url):
        if "::" in url:  # "simplecache::http://..." would reach an address unvetted
            raise MediaError(f"{show_url(url)}: chained fsspec URLs (a::b) are not supported")
        protocol = fsspec.core.split_protocol(url)[0]
        if protocol and protocol.lower() not in fsspec.available_protocols():
            raise MediaError(
                f"{show_url(url)}: unknown URL scheme {protocol!r}; use a path, file://, "
                "s3://, gs://, http(s):// or another fsspec protocol"
            )
        return ()
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise MediaError(f"{show_url(url)}: credentials in the URL (user:pass@) are refused")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise MediaError(f"{show_url(url)}: bad URL ({exc})") from None
    if not host:
        raise MediaError(f"{show_url(url)}: no host in the URL")
    try:
        addresses = resolve_host(host, port or (443 if parts.scheme.lower() == "https" else 80))
    except (socket.gaierror, UnicodeError) as exc:
        transient = getattr(exc, "errno", None) == socket.EAI_AGAIN
        raise MediaError(f"{show_url(url)}: cannot resolve {host!r} ({exc})", transient) from None
    for ip in () if allow_private else addresses:
        if reason := address_refusal(ip):
            raise MediaError(
                f"{show_url(url)}: {host!r} resolves to {reason} address {ip}; "
                f"pass {PRIVATE_FLAG} to fetch from it"
            )
    return tuple(addresses)


def check_url(url: str, allow_private: bool) -> None:
    """Refuse (MediaError, not retriable) an http(s) URL any of whose addresses is not
    public, a URL with credentials, a chained URL, or a scheme fsspec does not know."""
    vet_url(url, allow_private)


# --- http(s) -----------------------------------------------------------------------------


def _pinned(connection_class, addresses: tuple[str, ...]):
    """A connection factory whose TCP connect goes only to the vetted addresses; TLS still
    checks the certificate against the URL's host name."""

    def connect(address, timeout, source_address=None):
        last: OSError | None = None
        for ip in addresses:
            try:
                return socket.create_connection((ip, address[1]), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError(f"no address for {address[0]}")

    def factory(host, **kwargs):
        conn = connection_class(host, **kwargs)
        conn._create_connection = connect  # http.client's own hook for the socket
        return conn

    return factory


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()  # loading the CA store costs; a context is shareable


class _PinnedHandler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    def __init__(self, addresses: tuple[str, ...]):
        urllib.request.HTTPHandler.__init__(self)
        self._addresses = addresses

    def http_open(self, req):
        return self.do_open(_pinned(http.client.HTTPConnection, self._addresses), req)

    def https_open(self, req):
        factory = _pinned(http.client.HTTPSConnection, self._addresses)
        return self.do_open(factory, req, context=_tls_context())


def _opener(addresses: tuple[str, ...]) -> urllib.request.OpenerDirector:
    # Built by hand: no proxy, redirect, ftp, file or data handlers. Any non-2xx (3xx
    # included) raises HTTPError, and our loop decides what to do with it.
    opener = urllib.request.OpenerDirector()
    opener.add_handler(_PinnedHandler(addresses))
    opener.add_handler(urllib.request.HTTPDefaultErrorHandler())
    opener.add_handler(urllib.request.HTTPErrorProcessor())
    return opener


def _network_error(url: str, exc: BaseException) -> MediaError:
    reason = getattr(exc, "reason", exc) if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, http.client.InvalidURL):
        return MediaError(f"{show_url(url)}: bad URL ({reason})")
    if isinstance(reason, ssl.SSLCertVerificationError):
        return MediaError(f"{show_url(url)}: TLS certificate refused ({reason.verify_message})")
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return MediaError(f"{show_url(url)}: timed out", retriable=True)
    text = " ".join(str(reason).split()) or type(reason).__name__
    return MediaError(f"{show_url(url)}: {text}", retriable=True)


def _http_open(url: str, limits: MediaLimits, method: str, fallback: str = ""):
    """The response for `url` after following redirects by hand, every hop vetted. A 405 or
    501 (no such method here) retries with `fallback` when given."""
    current = url
    for _ in range(limits.max_redirects + 1):
        addresses = vet_url(current, limits.allow_private_urls)
        request = urllib.request.Request(current, method=method)
        request.add_header("Accept-Encoding", "identity")  # sizes are of the bytes we keep
        try:
            return _opener(addresses).open(request, timeout=limits.timeout_s), current
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.headers else None
            exc.close()
            if exc.code in REDIRECT_CODES and location:
                current = urljoin(current, location)
                if not is_http(current):
                    raise MediaError(
                        f"{show_url(url)}: redirected to a non-http(s) URL {show_url(current)}"
                    ) from None
                continue
            if exc.code in (405, 501) and fallback:
                return _http_open(current, limits, fallback)
            retriable = exc.code >= 500 or exc.code in RETRIABLE_4XX
            raise MediaError(
                f"{show_url(current)}: HTTP {exc.code} {exc.reason}", retriable
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _network_error(current, exc) from None
    raise MediaError(f"{show_url(url)}: more than {limits.max_redirects} redirects")


def _content_length(response) -> int:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.strip().isdigit() else -1


def _too_big(url: str, size: int | str, limits: MediaLimits) -> MediaError:
    return MediaError(f"{show_url(url)}: larger than the {limits.max_bytes}-byte limit ({size})")


def _http_read(url: str, limits: MediaLimits) -> bytes:
    response, final = _http_open(url, limits, "GET")
    with response:
        if _content_length(response) > limits.max_bytes:
            raise _too_big(url, f"{_content_length(response)} bytes", limits)
        chunks, total = [], 0
        try:
            while chunk := response.read(min(CHUNK, limits.max_bytes + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > limits.max_bytes:  # the server sent more than it said, or said nothing
                    raise _too_big(url, "cut at the limit", limits)
        except (OSError, http.client.HTTPException) as exc:
            raise _network_error(final, exc) from None
    return b"".join(chunks)


def _http_stat(url: str, limits: MediaLimits) -> MediaStat:
    # Without HEAD support: a GET whose body is never read (we hang up after the headers).
    response, _ = _http_open(url, limits, "HEAD", fallback="GET")
    with response:
        etag = response.headers.get("ETag")
        modified = response.headers.get("Last-Modified")
        size = _content_length(response)
    version = f"etag:{etag}" if etag else f"modified:{modified}" if modified else ""
    return MediaStat(url, size, version)


# --- fsspec --------------------------------------------------------------------------------


def _fs_error(url: str, exc: BaseException) -> MediaError:
    if isinstance(exc, FileNotFoundError):
        return MediaError(f"{show_url(url)}: no such file")
    if isinstance(exc, PermissionError):
        return MediaError(f"{show_url(url)}: permission denied")
    if isinstance(exc, (IsADirectoryError, NotADirectoryError)):
        return MediaError(f"{show_url(url)}: not a file")
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    name = type(exc).__name__
    if isinstance(exc, (TimeoutError, ConnectionError)):
        retriable = True
    elif isinstance(exc, OSError):
        retriable = exc.errno is None or exc.errno in TRANSIENT_ERRNOS
    else:  # botocore and friends: judged by name (ReadTimeoutError, SlowDown, Throttling)
        retriable = any(word in name for word in ("Timeout", "Connection", "Throttl", "SlowDown"))
    return MediaError(f"{show_url(url)}: {name}: {text}", retriable)


def _open(url: str, storage_options: dict | None):
    check_url(url, allow_private=True)  # scheme and chain checks; no host to vet here
    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError, TypeError) as exc:  # a missing driver (gcsfs), bad options
        raise MediaError(f"cannot open {show_url(url)}: {exc}") from None


def _fs_info(url: str, fs, path: str) -> dict:
    try:
        info = fs.info(path)
    except Exception as exc:  # every store raises its own kinds
        raise _fs_error(url, exc) from None
    if info.get("type") == "directory":
        raise MediaError(f"{show_url(url)}: is a directory, not a file")
    return info


def _fs_version(fs, path: str, info: dict) -> str:
    if isinstance(fs, LocalFileSystem):
        return f"mtime:{os.stat(path).st_mtime_ns}"  # info()'s float mtime loses precision
    lowered = {str(k).lower(): v for k, v in info.items()}
    for key, tag in VERSION_KEYS:
        if lowered.get(key) not in (None, ""):
            return f"{tag}:{lowered[key]}"
    return ""


def _fs_stat(url: str, storage_options: dict | None) -> MediaStat:
    fs, path = _open(url, storage_options)
    info = _fs_info(url, fs, path)
    size = info.get("size")
    return MediaStat(url, int(size) if size is not None else -1, _fs_version(fs, path, info))


def _fs_read(url: str, limits: MediaLimits, storage_options: dict | None) -> bytes:
    fs, path = _open(url, storage_options)
    size = _fs_info(url, fs, path).get("size")
    if size is not None and int(size) > limits.max_bytes:
        raise _too_big(url, f"{size} bytes", limits)  # refused before any byte is read
    try:
        # One ranged read: a file that grew since info() is still cut at the limit.
        data = fs.cat_file(path, start=0, end=limits.max_bytes + 1)
    except Exception as exc:  # every store raises its own kinds
        raise _fs_error(url, exc) from None
    if len(data) > limits.max_bytes:
        raise _too_big(url, "cut at the limit", limits)
    return data


def stat_media(url: str, limits: MediaLimits, storage_options: dict | None = None) -> MediaStat:
    """Size and version without reading content: fs.info(), or an http(s) HEAD."""
    return _http_stat(url, limits) if is_http(url) else _fs_stat(url, storage_options)


def read_media(url: str, limits: MediaLimits, storage_options: dict | None = None) -> bytes:
    """The whole content, never more than limits.max_bytes."""
    return _http_read(url, limits) if is_http(url) else _fs_read(url, limits, storage_options)


def read_verified(
    url: str, sha256: str, limits: MediaLimits, storage_options: dict | None = None
) -> bytes:
    """The content validation hashed, read again where it is used (an actor); MediaError
    (not retriable) when the bytes changed since: rendering them would mix old and new."""
    data = read_media(url, limits, storage_options)
    found = sha256_hex(data)
    if found != sha256:
        raise MediaError(
            f"{url} changed since validation (sha256 {found[:12]}..., expected "
            f"{sha256[:12]}...); run the command again to validate the new content"
        )
    return data
