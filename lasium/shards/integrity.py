"""A shard's bytes checked against its manifest entry (size and sha256) before any of its tasks is used.

A manifest (or a shard's sidecar) vouches for each shard with its size and sha256. Readers that know
the entry (:func:`lasium.shards.reader.iter_shard_tasks`, so ``iter_tasks``, ``lasium-shards preview``
and ``lasium-train``) open the shard with :func:`open_checked_shard`, which returns a file object that
holds exactly the vouched-for bytes, or raises :class:`ShardError` naming the shard. Decoding starts
only after that, so no task of a shard whose bytes differ from its entry reaches a caller.

* **Local files**: hash, then decode from the same open file (the page cache makes the second read
  cheap). The file stays open between the two passes, so a file replaced by another (``mv``, ``cp`` over
  it) is never half-checked. A shard once checked is not hashed again in this process while its identity
  (device, inode, size, modification and change times) is the same: every write through the file system
  changes the change time, which no user can set back, so a file whose identity is unchanged holds the
  bytes that were checked. A training run reads each shard many times and hashes it once.
* **Streams** (``http(s)://``, fsspec URLs, ``pipe:``): the bytes are hashed while they are copied into
  a :class:`tempfile.SpooledTemporaryFile` (in memory up to :data:`SPOOL_MEMORY`, then a temporary file on
  disk), and decoded from that copy once size and digest match: the bytes decoded are the bytes hashed,
  whatever the server sends on another request. At most ``bytes`` + 1 bytes are read: a server that sends
  more is refused without filling the disk.

What it does not cover: a process of the same user that writes into a shard *while* it is being decoded
(after it was checked) can change tasks undetected; so could any process that can write to the trainer's
memory. The guarantee is about bytes at rest and in transit.

Cost (``benchmarks/bench_verify.py``, ``docs/shard-format.md`` section 9.1; the trainer's streaming path on 2,000 tasks
of the bundled GAN, a loaded 2-core CPU): hashing is 16–18 µs of CPU per 26 KB task, 12% of the loader's CPU time
when every shard is hashed (one pass), 1–3% over a 5-round training stream, where each shard is hashed once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO

from lasium.errors import ShardError
from lasium.shards.format import ShardEntry
from lasium.shards.streams import BUFFER, close_stream, open_url, url_to_path

SPOOL_MEMORY = 64 << 20  # a streamed shard is held in memory up to this size, then in a temporary file
CHUNK = 1 << 20
_MAX_REMEMBERED = 1 << 20  # file identities remembered as checked (a few hundred bytes each)
_CHECKED: dict[tuple[int, int, int, int, int], str] = {}  # file identity -> the sha256 it was checked to have

SKIP_HINT = "re-copy it, or skip it with lasium-train --skip-corrupt"


class ShardIntegrityError(ShardError):
    """A shard's bytes differ from what its manifest entry vouches for (size or sha256)."""


def size_error(url: str, entry: ShardEntry, got: int, verb: str = "is") -> ShardIntegrityError:
    return ShardIntegrityError(
        f"{url} {verb} {got} bytes, the manifest says {entry.bytes} (truncated or rewritten); {SKIP_HINT}"
    )


def digest_error(url: str, entry: ShardEntry, digest: str) -> ShardIntegrityError:
    return ShardIntegrityError(
        f"{url}: sha256 {digest[:12]}… differs from the manifest's {entry.sha256[:12]}… "
        f"(the shard is corrupt or was rewritten); {SKIP_HINT}"
    )


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def same_file(checked: IO[bytes], fd: int) -> bool:
    """Whether descriptor ``fd`` is the very file ``checked`` (a local shard from :func:`open_checked_shard`),
    unchanged since: same device, inode, size, modification and change times."""
    return _identity(os.fstat(checked.fileno())) == _identity(os.fstat(fd))


def forget_checked() -> None:
    """Forget which local shards were checked (the next read of each hashes it again)."""
    _CHECKED.clear()


def _accept(
    f: IO[bytes], url: str, entry: ShardEntry, before: tuple[int, int, int, int, int], read: int, digest: str
) -> None:
    """Raise unless ``read`` bytes with ``digest`` are the entry's, from a file that did not change meanwhile;
    then remember the file as checked."""
    if read != entry.bytes:
        raise size_error(url, entry, read, "was read as")
    if digest != entry.sha256:
        raise digest_error(url, entry, digest)
    if _identity(os.fstat(f.fileno())) != before:
        raise ShardIntegrityError(f"{url} changed while it was being checked; rerun when nothing writes it")
    if len(_CHECKED) >= _MAX_REMEMBERED:
        _CHECKED.clear()
    _CHECKED[before] = entry.sha256


def _open_local(path: Path, url: str, entry: ShardEntry) -> IO[bytes]:
    try:
        f = open(path, "rb", buffering=BUFFER)
    except FileNotFoundError:
        raise ShardError(f"shard {url} not found") from None
    except IsADirectoryError:
        raise ShardError(f"shard {url} is a folder, not a file") from None
    except OSError as exc:
        raise ShardError(f"cannot open shard {url}: {exc.strerror}") from None
    try:
        before = _identity(os.fstat(f.fileno()))
        if before[2] != entry.bytes:
            raise size_error(url, entry, before[2])
        if _CHECKED.get(before) != entry.sha256:
            sha, read = hashlib.sha256(), 0
            try:
                while data := f.read(CHUNK):
                    sha.update(data)
                    read += len(data)
            except OSError as exc:
                raise ShardError(f"cannot read shard {url}: {exc.strerror}") from None
            _accept(f, url, entry, before, read, sha.hexdigest())
            f.seek(0)
        return f
    except BaseException:
        f.close()
        raise


def _spool(url: str, entry: ShardEntry) -> IO[bytes]:
    stream = open_url(url)
    announced = getattr(stream, "expected", None)  # Content-Length / object size of a remote stream
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
    try:
        if isinstance(announced, int) and announced != entry.bytes:
            raise size_error(url, entry, announced, "is served as")
        sha = hashlib.sha256()
        got = 0
        while got <= entry.bytes:
            data = stream.read(min(CHUNK, entry.bytes + 1 - got))
            if not data:
                break
            sha.update(data)
            spool.write(data)
            got += len(data)
        if got > entry.bytes:
            raise ShardIntegrityError(
                f"{url} holds more than the {entry.bytes} bytes the manifest says (rewritten); {SKIP_HINT}"
            )
        close_stream(stream, check=True)  # a pipe: command that failed is the error to report
        stream = None  # type: ignore[assignment]  # closed: nothing for the handler below to close
        if got != entry.bytes:
            raise size_error(url, entry, got, "arrived as")
        if sha.hexdigest() != entry.sha256:
            raise digest_error(url, entry, sha.hexdigest())
        spool.seek(0)
        return spool
    except BaseException:
        if stream is not None:
            close_stream(stream, check=False)
        spool.close()
        raise


def open_checked_shard(url: str, entry: ShardEntry) -> IO[bytes]:
    """A seekable binary file holding shard ``url``'s bytes, positioned at 0, once they match ``entry``.

    Raises :class:`ShardIntegrityError` when the size or sha256 differ from the entry, :class:`ShardError`
    when the shard cannot be read. The caller closes the file.
    """
    path = None if url.startswith("pipe:") else url_to_path(url)
    if path is not None:
        return _open_local(path, url, entry)
    return _spool(url, entry)
