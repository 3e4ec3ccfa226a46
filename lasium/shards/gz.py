"""gzip for WebDataset shards (``<name>-NNNNNN.tar.gz``): the stdlib writer and a strict streaming reader.

Writing: :func:`gzip_writer` is ``gzip.GzipFile(filename="", mtime=0)``: a fixed header (no file name, mtime 0,
OS byte 255 "unknown"), deflate from ``zlib``, the CRC-32/size trailer, so the same tar bytes always give the
same ``.tar.gz`` bytes with a given zlib. It replaced a hand-written writer whose bytes it reproduces at levels 1
and 6 (checked on 3 MB when it was replaced; level 9 differs, the old writer used memLevel 9). The default level
is 6: the bundled GAN's 5-way 1+5-shot tasks take 23% of their raw pixel bytes at level 6 against 25% at level 1,
read at about the same rate (docs/shard-format.md, "Compression"). ``tar -xzf``, Python's ``gzip``/``tarfile`` and a
stock ``webdataset.WebDataset`` read the result.

Reading: :class:`GzipReader` decompresses a byte stream on the fly (it never holds a whole shard)
and is strict where a lenient reader would stop early without a word: a stream that ends before the
gzip trailer, a CRC or length mismatch, or bytes after the data that are neither another gzip
member nor zero padding raise :class:`ShardError` naming the shard.

Why not ``gzip.GzipFile`` for reading too: measured by ``benchmarks/bench_tar_gzip.py`` in one run (a level-6
``.tar.gz`` of 500 tasks read through :func:`lasium.shards.tario.iter_tar_members`, 5 interleaved rounds, 2-core
CPU loaded by other jobs; ``results/bench_tar_gzip.json``), :class:`GzipReader` read 2,512 tasks/s and
``GzipFile`` 2,122: GzipFile takes 1.18× the time, more than the 10% of the trainer's ``.tar.gz`` read rate that
issue 28 allows to lose. Strictness is not the reason: read to its end, ``GzipFile`` also raises on a cut stream
(``EOFError``), a bad CRC and trailing garbage (``BadGzipFile``), and accepts zero padding and concatenated
members, as this reader does; this one names the shard in the message.
"""

from __future__ import annotations

import gzip
import zlib
from typing import TYPE_CHECKING, Any

from lasium.errors import ShardError

if TYPE_CHECKING:
    from lasium.shards.streams import Readable

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_LEVEL = 6  # .tar.gz shards: zlib's default, the level that meets 35 % of raw bytes at 28×28×1 (module doc)
HDF5_GZIP_LEVEL = 1  # the HDF5 gzip filter's level (unchanged: pinned reference shards)
_READ = 1 << 18  # compressed bytes read from the raw stream at a time
_OUT = 1 << 20  # decompressed bytes produced per step at most (bounds memory on highly compressible data)


def gzip_writer(out: Any, level: int = DEFAULT_LEVEL) -> gzip.GzipFile:
    """A stdlib ``gzip.GzipFile`` that compresses what is written to it into ``out`` as one reproducible member
    (no file name, mtime 0); its ``close()`` writes the trailer and leaves ``out`` open."""
    if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 9:
        raise ShardError(f"gzip level {level!r} is out of range 0..9")
    return gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=out, mtime=0)


class GzipReader:
    """A readable stream of the decompressed content of a gzip stream (several members allowed).

    ``prefix`` = bytes already taken from ``raw`` (the sniffed magic). :meth:`finish` reads to the
    end of the compressed stream, which checks the last CRC and that nothing but padding follows.
    """

    def __init__(self, raw: Readable, shard: str, prefix: bytes = b"") -> None:
        self.raw, self.shard = raw, shard
        self._pending = prefix  # compressed bytes not yet given to the decompressor
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buf = b""
        self._pos = 0
        self._eof = False
        self.compressed_bytes = len(prefix)

    def _raw_read(self) -> bytes:
        try:
            data = self.raw.read(_READ)
        except ShardError:
            raise
        except (OSError, EOFError) as exc:
            raise ShardError(
                f"{self.shard}: reading failed ({exc}); the transfer was cut or the file is damaged, re-copy it"
            ) from None
        data = data or b""
        self.compressed_bytes += len(data)
        return data

    def _fill(self) -> None:
        """Decompress the next piece into the buffer (sets ``_eof`` at the real end of the stream)."""
        while True:
            # At the end of a member, zlib leaves what followed it in unused_data (moved to _pending below) and, when
            # the call was output-limited, a stale copy in unconsumed_tail: reading that copy again looped forever
            # on zero padding after a member larger than _OUT (found by benchmarks/bench_tar_gzip.py).
            if self._d.unconsumed_tail and not self._d.eof:
                data = self._d.unconsumed_tail
            elif self._pending:
                data, self._pending = self._pending, b""
            else:
                data = self._raw_read()
                if not data:
                    if self._d.eof:
                        self._eof = True
                        return
                    raise ShardError(
                        f"{self.shard}: gzip stream ends before its end (truncated); regenerate or re-copy it"
                    )
            if self._d.eof:  # the previous member is complete: padding, another member, or garbage
                stripped = data.lstrip(b"\x00")
                if not stripped:
                    continue
                if not stripped.startswith(GZIP_MAGIC[: len(stripped)]):
                    raise ShardError(
                        f"{self.shard}: unexpected bytes after the gzip data; "
                        "the shard is damaged, regenerate or re-copy it"
                    )
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data = stripped
            try:
                out = self._d.decompress(data, _OUT)
            except zlib.error as exc:
                raise ShardError(
                    f"{self.shard}: corrupt gzip data ({exc}); the shard is damaged, regenerate or re-copy it"
                ) from None
            if self._d.eof and self._d.unused_data:
                self._pending = self._d.unused_data + self._pending
            if out:
                rest = self._buf[self._pos :]
                self._buf = rest + out if rest else out
                self._pos = 0
                return

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._buf[self._pos :]]
            self._buf, self._pos = b"", 0
            while not self._eof:
                self._fill()
                parts.append(self._buf)
                self._buf, self._pos = b"", 0
            return b"".join(parts)
        while len(self._buf) - self._pos < n and not self._eof:
            self._fill()
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def finish(self) -> None:
        """Read (and discard) the rest: the end-of-archive padding, the CRC check, trailing bytes."""
        self._buf, self._pos = b"", 0
        while not self._eof:
            self._fill()
            self._buf, self._pos = b"", 0


class _Prefixed:
    """``raw`` with ``prefix`` (bytes already read from it) put back in front."""

    def __init__(self, raw: Readable, prefix: bytes) -> None:
        self.raw, self._prefix = raw, prefix

    def read(self, n: int = -1) -> bytes:
        if not self._prefix:
            return self.raw.read(n)
        if n is None or n < 0:
            data, self._prefix = self._prefix + (self.raw.read() or b""), b""
            return data
        data, self._prefix = self._prefix[:n], self._prefix[n:]
        if len(data) < n:
            data += self.raw.read(n - len(data)) or b""
        return data


def tar_stream(raw: Readable, shard: str) -> Readable:
    """The tar bytes of a shard stream: decompressed on the fly when it is gzip (detected by its magic,
    like ``tar`` and WebDataset do), else the stream itself. A ``.tar.gz`` that is not gzip is refused."""
    try:
        head = raw.read(2) or b""
        if len(head) == 1:
            head += raw.read(1) or b""
    except (OSError, EOFError) as exc:
        raise ShardError(f"{shard}: reading failed ({exc}); re-copy it") from None
    if head == GZIP_MAGIC:
        return GzipReader(raw, shard, head)
    if shard.split("?")[0].rstrip("'\" ").endswith(".gz"):
        raise ShardError(f"{shard}: the name ends in .gz but the file is not gzip-compressed; rename or re-copy it")
    return _Prefixed(raw, head)
