"""Encoding a TaskBatch as WebDataset tar bytes, vectorized over tasks (the writer's hot path).

All tasks of a batch share member sizes, so the ``support.npy``/``query.npy``/``latents.npy``
members of a task form a fixed-size record: the same ustar headers except for the nine key digits
and the checksum, the same npy headers, then the raw array bytes. A chunk of tasks is therefore one
numpy array of rows, built with a handful of column assignments (headers, key digits, checksums in
octal, array bytes) instead of a Python loop over members. ``meta.json`` varies in length; when all
metas of a chunk pad to the same number of blocks (the usual case) it joins the rows as a
fixed-size tail, otherwise that chunk falls back to a per-task loop that yields the same bytes.

Against the libraries, measured by ``benchmarks/bench_tar_gzip.py`` in one run (500 tasks of 5-way 1+5-shot
28×28×1, 5 interleaved rounds, 2-core CPU loaded by other jobs; ``results/bench_tar_gzip.json``): this encoder
wrote 3,454 tasks/s, ``tarfile`` (``USTAR_FORMAT``, mtime 0, owner 0/0, mode 0644, ``np.save`` members) 838
(4.1× slower) and ``webdataset.TarWriter(mtime=0, user="", group="", mode=0o644)`` 831 (4.2× slower); and
neither library writes the format's bytes (:mod:`lasium.shards.tario` says why), so the pinned reference shards
(tests/test_gen_reference_shards.py) could not be kept with them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from lasium.shards.tario import BLOCK, MemberHeaderTemplate, end_of_archive, padding
from lasium.tasks import TaskBatch

if TYPE_CHECKING:
    from lasium.shards.codecs import ImageCodec

TASKS_PER_CHUNK = 512  # tasks per yielded chunk (about 13 MB for 5-way 1+5-shot 28×28)
_POW10 = 10 ** np.arange(8, -1, -1, dtype=np.int64)
_OCT6 = 3 * np.arange(5, -1, -1, dtype=np.int64)
_OCT11 = 3 * np.arange(10, -1, -1, dtype=np.int64)
_ZEROS = bytes(BLOCK)


def npy_header(item: np.ndarray) -> bytes:
    """The ``.npy`` (format 1.0) header ``np.save`` writes for an array like ``item``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(item))
    return buf.getvalue()


def _digits(indices: np.ndarray) -> np.ndarray:
    """(n, 9) ASCII digits of the task indices."""
    return ((indices[:, None] // _POW10) % 10 + 48).astype(np.uint8)


def _octal_columns(values: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    return (((values[:, None] >> shifts) & 7) + 48).astype(np.uint8)


class _FixedRecord:
    """Layout of the fixed-size part of a task: [ustar header | npy header | array bytes | padding] per member."""

    def __init__(self, batch: TaskBatch) -> None:
        self.row = bytearray()
        self.headers: list[tuple[int, int]] = []  # (offset of the ustar header, checksum base without digits)
        self.arrays: list[tuple[int, np.ndarray]] = []  # (offset of the array bytes, batch array as (T, bytes))
        for suffix, arr in (("support.npy", batch.support), ("query.npy", batch.query), ("latents.npy", batch.latents)):
            if arr is None:
                continue
            head = npy_header(arr[0])
            size = len(head) + arr[0].nbytes
            template = MemberHeaderTemplate(suffix, size)
            self.headers.append((len(self.row), template.base))
            self.row += template.template
            self.row += head
            self.arrays.append((len(self.row), np.ascontiguousarray(arr).reshape(len(arr), -1).view(np.uint8)))
            self.row += bytes(arr[0].nbytes + padding(size))
        self.size = len(self.row)
        self.template = np.frombuffer(bytes(self.row), np.uint8)

    def fill(self, rows: np.ndarray, start: int, stop: int, digits: np.ndarray) -> None:
        """Write tasks start..stop-1 (``digits`` = their key digits) into ``rows[:, :self.size]``."""
        rows[:, : self.size] = self.template  # header bytes; array regions are overwritten below
        digit_sum = digits.sum(axis=1, dtype=np.int64)
        for offset, base in self.headers:
            rows[:, offset + 5 : offset + 14] = digits
            rows[:, offset + 148 : offset + 154] = _octal_columns(base + digit_sum, _OCT6)
            rows[:, offset + 154] = 0  # checksum field: six octal digits, NUL, space
        for offset, flat in self.arrays:
            rows[:, offset : offset + flat.shape[1]] = flat[start:stop]


def wds_chunks(
    batch: TaskBatch,
    first_task: int,
    metas_json: list[bytes],
    chunk_tasks: int = TASKS_PER_CHUNK,
    vectorized: bool = True,
) -> Iterator[Any]:
    """The shard's tar bytes in chunks (bytes or uint8 arrays), end-of-archive included."""
    fixed = _FixedRecord(batch)
    meta_template = MemberHeaderTemplate("meta.json")
    meta_base = meta_template.base - meta_template.size_field_sum
    total = 0
    for start in range(0, len(batch), chunk_tasks):
        stop = min(len(batch), start + chunk_tasks)
        metas = metas_json[start:stop]
        lengths = np.fromiter((len(m) for m in metas), np.int64, len(metas))
        blocks = -(-lengths // BLOCK)
        digits = _digits(np.arange(first_task + start, first_task + stop, dtype=np.int64))
        if vectorized and (blocks == blocks[0]).all():
            meta_size = BLOCK * (1 + int(blocks[0]))
            rows = np.zeros((stop - start, fixed.size + meta_size), np.uint8)
            fixed.fill(rows, start, stop, digits)
            m = fixed.size  # the meta.json member: header (template + digits + size + checksum), then the JSON
            rows[:, m : m + BLOCK] = np.frombuffer(meta_template.template, np.uint8)
            rows[:, m + 5 : m + 14] = digits
            size_field = _octal_columns(lengths, _OCT11)
            rows[:, m + 124 : m + 135] = size_field
            checksum = meta_base + digits.sum(axis=1, dtype=np.int64) + size_field.sum(axis=1, dtype=np.int64)
            rows[:, m + 148 : m + 154] = _octal_columns(checksum, _OCT6)
            rows[:, m + 154] = 0
            # scatter the concatenated JSON texts to their rows in one fancy-indexed assignment
            ends = np.cumsum(lengths)
            row_starts = np.arange(stop - start, dtype=np.int64) * rows.shape[1] + m + BLOCK
            dest = np.repeat(row_starts - (ends - lengths), lengths) + np.arange(int(ends[-1]), dtype=np.int64)
            rows.reshape(-1)[dest] = np.frombuffer(b"".join(metas), np.uint8)
            chunk: Any = rows.reshape(-1)
        else:
            rows = np.empty((stop - start, fixed.size), np.uint8)
            fixed.fill(rows, start, stop, digits)
            parts: list[Any] = []
            for i, meta in enumerate(metas):
                d = bytes(digits[i])
                parts += [rows[i], meta_template.build(d, sum(d), len(meta)), meta, _ZEROS[: padding(len(meta))]]
            chunk = b"".join(parts)
        total += chunk.nbytes if isinstance(chunk, np.ndarray) else len(chunk)
        yield chunk
    yield end_of_archive(total)


def wds_image_chunks(batch: TaskBatch, first_task: int, metas_json: list[bytes], codec: ImageCodec) -> Iterator[bytes]:
    """The shard's tar bytes, a task at a time, when its images are image members (:mod:`lasium.shards.codecs`):
    ``support.<suffix>``, ``query.<suffix>``, then ``latents.npy`` and ``meta.json`` as in the raw layout. The image
    encoder dominates here (milliseconds per task), so the tar headers are built per member from the templates."""
    names = (f"support.{codec.suffix}", f"query.{codec.suffix}", "latents.npy", "meta.json")
    templates = {name: MemberHeaderTemplate(name) for name in names}
    latents_head = npy_header(batch.latents[0]) if batch.latents is not None else b""
    total = 0
    for i in range(len(batch)):
        digits = b"%09d" % (first_task + i)
        digit_sum = sum(digits)
        members = [(names[0], codec.encode(batch.support[i])), (names[1], codec.encode(batch.query[i]))]
        if batch.latents is not None:
            members.append((names[2], latents_head + np.ascontiguousarray(batch.latents[i]).tobytes()))
        members.append((names[3], metas_json[i]))
        parts: list[bytes] = []
        for name, data in members:
            parts += [bytes(templates[name].build(digits, digit_sum, len(data))), data, _ZEROS[: padding(len(data))]]
        chunk = b"".join(parts)
        total += len(chunk)
        yield chunk
    yield end_of_archive(total)
