"""Verifying a shard set: every shard present, sha256 as recorded, every task decodable with the right layout.

``verify_shard_set`` reads each shard once (tar: hashed while it is decoded, ``.tar.gz`` hashed as
stored and decompressed on the fly), so a large set costs one sequential pass over its bytes; the
progress bar counts those bytes. A set behind a URL (its ``manifest.json`` over http(s), s3://, ...)
is verified the same way while it streams, without a copy on disk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lasium.errors import ShardError
from lasium.shards.format import MANIFEST_NAME, Manifest, ShardEntry, task_ranges_report
from lasium.shards.manifest import build_manifest_from_sidecars, find_shard_files, find_sidecars, read_manifest
from lasium.shards.reader import iter_hdf5_shard, iter_wds_stream
from lasium.shards.remote import TransferError, is_remote, manifest_url, read_remote_manifest
from lasium.shards.streams import Readable, open_url, url_to_path

CHUNK = 1 << 20


@dataclass
class ShardProblem:
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_shard_set`; ``ok`` when there are no problems."""

    manifest: Manifest
    shards_checked: int = 0
    tasks_checked: int = 0
    bytes_checked: int = 0
    problems: list[ShardProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _HashingReader:
    """Read-through wrapper: hashes and counts bytes, reports them to a progress callback."""

    def __init__(self, raw: Readable, progress: Any) -> None:
        self.raw, self.progress = raw, progress
        self.sha = hashlib.sha256()
        self.bytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.bytes += len(data)
        self.progress.update(len(data))
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def load_set_manifest(folder: str | Path) -> tuple[Manifest, list[str]]:
    """The manifest of ``folder`` (or one rebuilt from its sidecars, with a note). ShardError if neither.

    ``folder`` may also be a ``file://`` URL, a ``manifest.json`` path, or the URL of one
    (``https://host/set/manifest.json``) or of the set's folder (``s3://bucket/set``).
    """
    text = str(folder)
    if is_remote(text):
        url = manifest_url(text)
        if url is None:
            raise ShardError(f"{text} is not the URL of a manifest; pass the URL of the set's manifest.json")
        return read_remote_manifest(url), []
    folder = _local(text)  # a path or a file:// URL
    if folder.suffix == ".json" and folder.is_file():
        return read_manifest(folder), []
    if not folder.is_dir():
        raise ShardError(f"shard folder {folder} does not exist")
    if (folder / MANIFEST_NAME).is_file():
        return read_manifest(folder), []
    if find_sidecars(folder):
        m = build_manifest_from_sidecars(folder, allow_gaps=True, write=False, check_sizes=False)
        return m, [f"no {MANIFEST_NAME}: checked against the shards' sidecars (run 'lasium-shards index' to write one)"]
    if find_shard_files(folder):
        raise ShardError(
            f"{folder} has shards but neither {MANIFEST_NAME} nor sidecars; nothing to verify them against"
        )
    raise ShardError(f"no task shards in {folder}")


def _local(folder: str | Path) -> Path:
    """The folder of a path or ``file://`` URL."""
    return url_to_path(str(folder)) or Path(folder)


class _Tee:
    """Read-through wrapper that also keeps every byte (an HDF5 shard behind a URL is decoded from memory)."""

    def __init__(self, raw: Readable) -> None:
        self.raw = raw
        self.parts: list[bytes] = []

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.parts.append(data)
        return data


def _check_shard(m: Manifest, entry: ShardEntry, progress: Any) -> tuple[int, str | None]:
    """Decode and hash one shard; (tasks read, problem or None)."""
    remote = m.url is not None
    where = m.shard_url(entry)
    layout = m.layout
    tasks = 0
    problem = None
    size_problem = None
    try:
        raw = open_url(where) if remote else open(where, "rb", buffering=CHUNK)
    except ShardError as exc:
        return 0, _strip(str(exc), where, entry)
    try:
        tee = _Tee(raw) if remote and m.container == "hdf5" else raw
        reader = _HashingReader(tee, progress)
        try:
            if m.container == "wds":
                for _ in iter_wds_stream(reader, entry.file, layout, entry):
                    tasks += 1
            else:
                reader.drain()  # HDF5 needs random access: hash first, then decode from the (cached) file or memory
                data = b"".join(tee.parts) if isinstance(tee, _Tee) else None
                for _ in iter_hdf5_shard(where, layout, entry, data=data):
                    tasks += 1
            reader.drain()
        except TransferError as exc:  # the shard never arrived whole: its sha256 cannot be checked
            return tasks, _strip(str(exc), where, entry)
        except ShardError as exc:
            problem = _strip(str(exc), where, entry)
            try:
                reader.drain()
            except TransferError as cut:
                return tasks, _strip(str(cut), where, entry)
    finally:
        raw.close()
    if remote and reader.bytes != entry.bytes and problem is None:
        size_problem = f"{reader.bytes} bytes served, the manifest says {entry.bytes} (truncated or rewritten)"
    if reader.sha.hexdigest() != entry.sha256:
        mismatch = (
            f"sha256 {reader.sha.hexdigest()[:12]}… differs from the manifest's {entry.sha256[:12]}… "
            "(corrupt or rewritten)"
        )
        if size_problem:
            mismatch = f"{size_problem}; {mismatch}"
        problem = f"{mismatch}; {problem}" if problem else mismatch
    return tasks, problem


def _strip(problem: str, where: str, entry: ShardEntry) -> str:
    for prefix in (f"{where}: ", f"{entry.file}: "):  # the report already names the shard
        problem = problem[len(prefix) :] if problem.startswith(prefix) else problem
    return problem


def verify_shard_set(folder: str | Path, *, progress: bool = False, allow_partial: bool = False) -> VerifyReport:
    """Check a shard folder against its manifest (or sidecars): presence, size, sha256, every task's layout.

    Task ranges that no shard holds are problems, unless ``allow_partial`` (a partial set on purpose:
    they become notes and only the shards present are checked).
    Raises :class:`ShardError` only when there is nothing to check (missing folder, no shards,
    unreadable manifest); problems with shards are collected in the report.
    """
    from tqdm import tqdm

    m, notes = load_set_manifest(folder)
    report = VerifyReport(m, notes=notes)
    gaps, overlaps = task_ranges_report(m.shards, m.config["num_tasks"])
    if allow_partial:
        report.notes += [f"partial set (--allow-partial): {g} missing, not checked" for g in gaps]
    else:
        report.problems += [ShardProblem(MANIFEST_NAME, f"missing {g} (no shard holds them)") for g in gaps]
    report.problems += [ShardProblem(MANIFEST_NAME, o) for o in overlaps]
    listed = {e.file for e in m.shards}
    local = m.root or _local(folder)
    extra = [] if m.url is not None else [p.name for p in find_shard_files(local) if p.name not in listed]
    if extra:
        report.notes.append(
            f"{len(extra)} shard file(s) not in the manifest, not checked: "
            f"{', '.join(extra[:5])}{' …' if len(extra) > 5 else ''}"
        )
    total = sum(e.bytes for e in m.shards)
    # disable=None: tqdm shows the bar only on a terminal
    with tqdm(
        total=total, unit="B", unit_scale=True, desc="verify", disable=None if progress else True, leave=False
    ) as bar:
        for entry in m.shards:
            if m.url is not None:  # behind a URL: presence and size show while streaming
                tasks, problem = _check_shard(m, entry, bar)
                report.shards_checked += 1
                report.tasks_checked += tasks
                report.bytes_checked += entry.bytes if problem is None else 0
                if problem:
                    report.problems.append(ShardProblem(entry.file, problem))
                continue
            path = m.shard_path(entry)
            if not path.is_file():
                report.problems.append(ShardProblem(entry.file, "missing"))
                bar.update(entry.bytes)
                continue
            size = path.stat().st_size
            if size != entry.bytes:
                report.problems.append(
                    ShardProblem(
                        entry.file, f"size {size} bytes, the manifest says {entry.bytes} (truncated or rewritten)"
                    )
                )
                bar.update(entry.bytes)
                continue
            tasks, problem = _check_shard(m, entry, bar)
            report.shards_checked += 1
            report.tasks_checked += tasks
            report.bytes_checked += size
            if problem:
                report.problems.append(ShardProblem(entry.file, problem))
    return report
