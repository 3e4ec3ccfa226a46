"""Shard files are written through :func:`lasium.safe_io.replace_atomically`, hashing as they go.

A reader therefore sees either the old file, the complete new one, or nothing: never a partial
shard under a final name. Temporary names are ``.<final name>.tmp`` (hidden, and not matching the
shard-name pattern, so readers, ``verify`` and ``index`` ignore them); the next write of the same
file truncates and reuses a leftover one. One shard is written by one process at a time (the
generation job assigns each shard to exactly one rank, and each job locks the shards it will write, so a
second job that would write the same shards is refused: :class:`lasium.generate.job.outdir.FolderClaim`),
so the fixed temporary name cannot collide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lasium.safe_io import replace_atomically


def temp_path(path: Path) -> Path:
    """The hidden temporary name used while ``path`` is being written."""
    return path.with_name(f".{path.name}.tmp")


def is_temp_name(file_name: str) -> bool:
    return file_name.startswith(".") and file_name.endswith(".tmp")


class HashingWriter:
    """Wraps an unbuffered file: hashes (sha256) and counts everything written, writes every byte."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        self.sha.update(view)
        n = len(view)
        self.bytes += n
        while view:  # unbuffered writes may be partial
            view = view[self.raw.write(view) :]
        return n


def atomic_write(path: Path, fill: Callable[[HashingWriter], object]) -> tuple[int, str]:
    """Create ``path`` via a hidden temporary file; ``fill`` writes the content. Returns (bytes, sha256).

    Any exception (including KeyboardInterrupt) removes the temporary file and leaves ``path`` as it was.
    """
    path = Path(path)
    written: list[HashingWriter] = []

    def write(tmp: Path) -> None:
        with open(tmp, "wb", buffering=0) as raw:
            written.append(HashingWriter(raw))
            fill(written[0])

    replace_atomically(path, write, temp=temp_path(path))
    return written[0].bytes, written[0].sha.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> tuple[int, str]:
    """Atomically replace ``path`` with ``data``."""
    return atomic_write(path, lambda out: out.write(data))
