"""A local HTTP server for the tests (127.0.0.1 only): serves a folder, with byte ranges, and injects faults.

``serve(root)`` yields a :class:`FaultServer`; ``server.url`` is its base URL. Faults are set per path
(relative to ``root``, e.g. ``"set/tiny-000001.tar"``) with :meth:`FaultServer.inject`, each for its first
``times`` requests (``None`` = every request):

* ``Fault("reset", after=N)``: the full Content-Length, N bytes of body, then a TCP reset;
* ``Fault("truncate", after=N)``: the full Content-Length, N bytes of body, then a clean close;
* ``Fault("status", status=503)``: that HTTP status (500, 503, 404, ...) instead of the file.

``serve(root, ranges=False)`` ignores ``Range`` headers (answers 200 with the whole file, as some servers
do). ``server.requests`` counts the GETs per path and ``server.log`` keeps ``(path, Range header)`` of each.
``static_server(root)`` is the plain server (no faults) the other tests share.

Run as a script (``python tests/fault_server.py ROOT [--no-ranges]``) it serves ``ROOT`` in its own process and
prints its base URL; a GET of ``/__fault__?path=P&kind=K&after=N&status=S&times=T`` arms a fault from outside
(``benchmarks/bench_remote.py`` does so before each read it times), ``kind=clear`` drops the path's unused ones.
"""

from __future__ import annotations

import contextlib
import http.server
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Fault:
    """One injected fault: ``kind`` is ``reset``, ``truncate`` or ``status``."""

    kind: str
    after: int = 0
    status: int = 503
    times: int | None = 1

    def __post_init__(self) -> None:
        if self.kind not in ("reset", "truncate", "status"):
            raise ValueError(f"unknown fault kind {self.kind!r}")


class FaultServer(http.server.ThreadingHTTPServer):
    """The server: ``root`` served, ``faults`` per path, ``requests``/``log`` of what was asked."""

    daemon_threads = True

    def __init__(self, root: Path, ranges: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = Path(root).resolve()
        self.ranges = ranges
        self.faults: dict[str, list[Fault]] = {}
        self.requests: Counter[str] = Counter()
        self.log: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def inject(self, path: str, *faults: Fault) -> None:
        """Add ``faults`` for ``path`` (applied in order, each for its ``times`` requests)."""
        with self.lock:
            self.faults.setdefault(path.lstrip("/"), []).extend(faults)

    def take_fault(self, path: str) -> Fault | None:
        """The fault for this request of ``path``, if any (using up one of its ``times``)."""
        with self.lock:
            for fault in self.faults.get(path, []):
                if fault.times is None:
                    return fault
                if fault.times > 0:
                    fault.times -= 1
                    return fault
        return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultServer

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def _file(self) -> tuple[str, Path | None]:
        name = unquote(urlsplit(self.path).path).lstrip("/")
        path = (self.server.root / name).resolve()
        if not path.is_relative_to(self.server.root) or not path.is_file():
            return name, None
        return name, path

    def _plain(self, status: int, head_only: bool = False) -> None:
        body = f"{status} {http.HTTPStatus(status).phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._serve(head_only=True)

    def do_GET(self) -> None:
        self._serve(head_only=False)

    def _arm(self) -> None:
        """``/__fault__?path=...&kind=...``: inject a fault from another process."""
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if query.get("kind") == "clear":  # drop the path's faults not yet used
            with self.server.lock:
                self.server.faults.pop(query["path"].lstrip("/"), None)
            self._plain(200)
            return
        times = query.get("times", "1")
        fault = Fault(
            query["kind"],
            after=int(query.get("after", 0)),
            status=int(query.get("status", 503)),
            times=None if times == "every" else int(times),
        )
        self.server.inject(query["path"], fault)
        self._plain(200)

    def _serve(self, head_only: bool) -> None:
        if not head_only and urlsplit(self.path).path == "/__fault__":
            self._arm()
            return
        name, path = self._file()
        wanted = self.headers.get("Range")
        fault = None
        if not head_only:
            with self.server.lock:
                self.server.requests[name] += 1
                self.server.log.append((name, wanted))
            fault = self.server.take_fault(name)
        if fault is not None and fault.kind == "status":
            self._plain(fault.status, head_only)
            return
        if path is None:
            self._plain(404, head_only)
            return
        data = path.read_bytes()
        start, status = 0, 200
        m = _RANGE_RE.match(wanted or "")
        if self.server.ranges and m:
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status, body = 206, data[start : end + 1]
        else:
            body = data
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if self.server.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        self.end_headers()
        if head_only:
            return
        if fault is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[: fault.after])
        self.wfile.flush()
        self.close_connection = True
        if fault.kind == "reset":  # SO_LINGER 0: close() sends RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


@contextlib.contextmanager
def serve(root: Path, *, ranges: bool = True) -> Iterator[FaultServer]:
    """Serve ``root`` on 127.0.0.1 (threaded) while inside; yields the :class:`FaultServer`."""
    httpd = FaultServer(root, ranges=ranges)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def static_server(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1 while inside (no faults); yields the base URL."""
    with serve(root) as httpd:
        yield httpd.url


def main() -> None:
    """Serve a folder from the command line until killed (for benchmarks that want the server in its own process)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--no-ranges", action="store_true", help="ignore Range headers (200, the whole file)")
    args = parser.parse_args()
    httpd = FaultServer(args.root, ranges=not args.no_ranges)
    print(httpd.url, flush=True)
    try:
        httpd.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
