"""Shard sets behind URLs: ``http://``/``https://`` with the standard library, other schemes through fsspec.

A team publishes a set by putting its folder on a web server or object store; others pass the URL
of its ``manifest.json`` and every shard is resolved next to it. Shards are streamed with one plain
GET each (never downloaded whole first, except HDF5, which needs random access and is read into
memory). ``s3://``, ``gs://`` and the other fsspec schemes work when fsspec and its backend for that
scheme (s3fs, gcsfs, ...) are installed; a missing one is named in a one-line error.

Every failure (unreachable host, HTTP 404, a connection cut in the middle of a shard, a read timeout)
is a :class:`ShardError` naming the URL, so the CLIs print one line and the trainer's
``--skip-corrupt`` can skip the shard.
"""

from __future__ import annotations

import http.client
import re
from typing import TYPE_CHECKING, Any

from lasium.errors import ShardError

if TYPE_CHECKING:
    from lasium.shards.streams import ByteStream

HTTP_TIMEOUT = 60.0  # seconds without data before a read gives up
MAX_MANIFEST_BYTES = 256 << 20
HTTP_SCHEMES = ("http", "https")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class TransferError(ShardError):
    """Reading a remote shard failed on the way (connection cut, timeout): its content was never complete."""


def url_scheme(text: str) -> str | None:
    """The scheme of ``scheme://...`` (lower case), else None."""
    m = _SCHEME_RE.match(str(text))
    return m.group(1).lower() if m else None


def is_remote(text: str) -> bool:
    """True for ``scheme://`` URLs other than ``file://`` (``pipe:`` is not a URL of this kind)."""
    scheme = url_scheme(text)
    return scheme is not None and scheme != "file"


class _GuardedStream:
    """A remote byte stream whose failures become :class:`ShardError`, and whose early end is noticed.

    ``expected`` = the length the server announced (Content-Length / object size), if any: a stream
    that ends before it was cut, even when the client library returns a quiet short read.
    """

    def __init__(self, raw: Any, url: str, expected: int | None) -> None:
        self.raw, self.url, self.expected = raw, url, expected
        self.got = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.raw.read() if n is None or n < 0 else self.raw.read(n)
        except ShardError:
            raise
        except (
            Exception
        ) as exc:  # OSError, http.client.HTTPException, or a storage backend's own errors (botocore, ...)
            raise TransferError(
                f"{self.url}: the transfer failed after {self.got} bytes ({type(exc).__name__}: {exc}); "
                "retry, or skip the shard with --skip-corrupt"
            ) from None
        data = data or b""
        self.got += len(data)
        if not data and n != 0 and self.expected is not None and self.got < self.expected:
            raise TransferError(
                f"{self.url}: the connection closed after {self.got} of {self.expected} bytes (transfer cut); "
                "retry, or skip the shard with --skip-corrupt"
            )
        return data

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:  # closing a broken connection may fail again; nothing is left to do
            pass


def _open_http(url: str) -> _GuardedStream:
    import urllib.error
    import urllib.request

    import lasium

    request = urllib.request.Request(
        url, headers={"User-Agent": f"lasium/{lasium.__version__}", "Accept-Encoding": "identity"}
    )
    try:
        response = urllib.request.urlopen(request, timeout=HTTP_TIMEOUT)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            raise ShardError(f"{url} not found (HTTP 404); check the URL, or that the file was uploaded") from None
        raise ShardError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise ShardError(f"cannot reach {url}: {exc.reason}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise ShardError(f"cannot open {url}: {type(exc).__name__}: {exc}") from None
    length = response.headers.get("Content-Length")
    expected = int(length) if length and length.isdigit() else None
    return _GuardedStream(response, url, expected)


def _open_fsspec(url: str) -> _GuardedStream:
    scheme = url_scheme(url)
    try:
        import fsspec
    except ImportError:
        raise ShardError(
            f"reading {scheme}:// URLs needs fsspec: pip install fsspec (or read the shards through a pipe: URL)"
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise ShardError(
            f"reading {scheme}:// URLs needs fsspec's {scheme} backend ({exc}); install it "
            "(e.g. pip install s3fs for s3://, gcsfs for gs://) or use a pipe: URL"
        ) from None
    except ValueError as exc:
        raise ShardError(
            f"cannot read {url}: {exc}; use http(s)://, an fsspec URL such as s3:// or gs://, a path or a pipe: URL"
        ) from None
    try:
        f = fs.open(path, "rb")
        size = getattr(f, "size", None)
    except FileNotFoundError:
        raise ShardError(f"{url} not found; check the URL, or that the file was uploaded") from None
    except Exception as exc:  # backends raise their own types (botocore, google.auth, ...): report them in one line
        raise ShardError(f"cannot open {url}: {type(exc).__name__}: {exc}") from None
    return _GuardedStream(f, url, size if isinstance(size, int) else None)


def open_remote(url: str) -> ByteStream:
    """A readable stream of ``url`` (one GET for http(s)). Raises :class:`ShardError` when it cannot."""
    if url_scheme(url) in HTTP_SCHEMES:
        return _open_http(url)
    return _open_fsspec(url)


def read_remote(url: str, limit: int | None = None) -> bytes:
    """The whole content of ``url`` (at most ``limit`` bytes, else an error)."""
    stream = open_remote(url)
    try:
        if limit is None:
            return stream.read()
        data = stream.read(limit + 1)
        more = data
        while more and len(data) <= limit:
            more = stream.read(limit + 1 - len(data))
            data += more
        if len(data) > limit:
            raise ShardError(f"{url} is larger than {limit} bytes; is it really a manifest.json?")
        return data
    finally:
        stream.close()


def read_remote_manifest(url: str) -> Any:
    """The manifest at ``url`` (a :class:`lasium.shards.format.Manifest` whose shards resolve next to it)."""
    from lasium.shards.format import Manifest, parse_json

    data = read_remote(url, MAX_MANIFEST_BYTES)
    try:
        d = parse_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ShardError(f"{url} is not valid JSON ({exc}); pass the URL of the set's manifest.json") from None
    m = Manifest.from_dict(d, url)
    m.url = url
    return m


def manifest_url(text: str) -> str | None:
    """``text`` as the URL of a manifest when it names one (``…/manifest.json``, ``….json``, or a folder URL:
    ``s3://bucket/sets/oc`` or ``…/oc/``), else None (a shard URL ending in ``.tar``, ``.tar.gz``, ``.h5``, or a
    brace pattern)."""
    if not is_remote(text):
        return None
    path = text.split("#", 1)[0].split("?", 1)[0]
    if path.endswith("/"):
        return text.split("?", 1)[0].split("#", 1)[0] + "manifest.json"
    if path.endswith(".json"):
        return text
    if "{" not in path and not path.endswith((".tar", ".tar.gz", ".h5")):  # a set's folder: s3://bucket/sets/oc
        return path + "/manifest.json"
    return None
