"""Verifying a shard set: every shard present, sha256 as recorded, every task decodable with the right layout.

``verify_shard_set`` reads each shard once (tar: hashed while it is decoded), so a large set costs
one sequential pass over its bytes; the progress bar counts those bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from lasium.errors import ShardError
from lasium.shards.format import MANIFEST_NAME, Manifest, ShardEntry, task_ranges_report
from lasium.shards.manifest import build_manifest_from_sidecars, find_shard_files, find_sidecars, read_manifest
from lasium.shards.reader import iter_hdf5_shard, iter_wds_stream

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

    def __init__(self, raw: BinaryIO, progress: Any) -> None:
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
    """The manifest of ``folder`` (or one rebuilt from its sidecars, with a note). ShardError if neither."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ShardError(f"shard folder {folder} does not exist")
    if (folder / MANIFEST_NAME).is_file():
        return read_manifest(folder), []
    if find_sidecars(folder):
        m = build_manifest_from_sidecars(folder, allow_gaps=True, write=False)
        return m, [f"no {MANIFEST_NAME}: checked against the shards' sidecars (run 'lasium-shards index' to write one)"]
    if find_shard_files(folder):
        raise ShardError(f"{folder} has shards but neither {MANIFEST_NAME} nor sidecars; nothing to verify them against")
    raise ShardError(f"no task shards in {folder}")


def _check_shard(m: Manifest, entry: ShardEntry, progress: Any) -> tuple[int, str | None]:
    """Decode and hash one shard; (tasks read, problem or None)."""
    path = m.shard_path(entry)
    layout = m.layout
    tasks = 0
    problem = None
    with open(path, "rb", buffering=CHUNK) as raw:
        reader = _HashingReader(raw, progress)
        try:
            if m.container == "wds":
                for _ in iter_wds_stream(reader, entry.file, layout, entry):
                    tasks += 1
            else:
                reader.drain()  # HDF5 needs random access: hash first, then decode from the (cached) file
                for _ in iter_hdf5_shard(str(path), layout, entry):
                    tasks += 1
        except ShardError as exc:
            problem = str(exc)
            for prefix in (f"{path}: ", f"{entry.file}: "):  # the report already names the shard
                problem = problem[len(prefix) :] if problem.startswith(prefix) else problem
        reader.drain()
    if reader.sha.hexdigest() != entry.sha256:
        mismatch = f"sha256 {reader.sha.hexdigest()[:12]}… differs from the manifest's {entry.sha256[:12]}… (corrupt or rewritten)"
        problem = f"{mismatch}; {problem}" if problem else mismatch
    return tasks, problem


def verify_shard_set(folder: str | Path, *, progress: bool = False) -> VerifyReport:
    """Check a shard folder against its manifest (or sidecars): presence, size, sha256, every task's layout.

    Raises :class:`ShardError` only when there is nothing to check (missing folder, no shards,
    unreadable manifest); problems with shards are collected in the report.
    """
    from tqdm import tqdm

    m, notes = load_set_manifest(folder)
    report = VerifyReport(m, notes=notes)
    gaps, overlaps = task_ranges_report(m.shards, m.config["num_tasks"])
    report.problems += [ShardProblem(MANIFEST_NAME, f"missing {g} (no shard holds them)") for g in gaps]
    report.problems += [ShardProblem(MANIFEST_NAME, o) for o in overlaps]
    listed = {e.file for e in m.shards}
    extra = [p.name for p in find_shard_files(Path(folder)) if p.name not in listed]
    if extra:
        report.notes.append(f"{len(extra)} shard file(s) not in the manifest, not checked: {', '.join(extra[:5])}{' …' if len(extra) > 5 else ''}")
    total = sum(e.bytes for e in m.shards)
    # disable=None: tqdm shows the bar only on a terminal
    with tqdm(total=total, unit="B", unit_scale=True, desc="verify", disable=None if progress else True, leave=False) as bar:
        for entry in m.shards:
            path = m.shard_path(entry)
            if not path.is_file():
                report.problems.append(ShardProblem(entry.file, "missing"))
                bar.update(entry.bytes)
                continue
            size = path.stat().st_size
            if size != entry.bytes:
                report.problems.append(ShardProblem(entry.file, f"size {size} bytes, the manifest says {entry.bytes} (truncated or rewritten)"))
                bar.update(entry.bytes)
                continue
            tasks, problem = _check_shard(m, entry, bar)
            report.shards_checked += 1
            report.tasks_checked += tasks
            report.bytes_checked += size
            if problem:
                report.problems.append(ShardProblem(entry.file, problem))
    return report
