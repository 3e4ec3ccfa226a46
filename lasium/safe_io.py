"""Crash-safe, pickle-free file IO shared by every stage: atomic JSON and safetensors writes, checked reads.

Writes go to a hidden temporary file in the destination folder (``.<name>.<pid>-<random>.tmp``), are fsynced
and then renamed over the final name, so a reader sees the old file or the complete new one, never a partial
write; any failure (including KeyboardInterrupt) removes the temporary file. What a killed writer leaves
(``kill -9``, a lost node) carries its process id, so :func:`remove_stale_temporaries` can tell it from the
files of a writer still at work. Reads accept JSON and safetensors
only (nothing is ever unpickled) and turn a missing or corrupt file into one
:class:`~lasium.errors.CheckpointError` line.

Optimizer state is stored the same way by ``lasium-fit`` and ``lasium-train``: per-parameter tensors (Adam
moments, step counts) as safetensors keys ``[<prefix>.]state.<param index>.<name>`` and the hyper-parameters
of each parameter group as JSON.

This is a core module: it imports nothing from the pipeline stages, and torch / safetensors only on first
use, so the torch-free shard tools (:mod:`lasium.shards.atomic`) share its file helpers cheaply.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lasium.errors import CheckpointError

if TYPE_CHECKING:
    import torch


# ----------------------------------------------------------------------------- atomic writes


def fsync_dir(folder: str | Path) -> None:
    """Persist a rename: fsync the directory entry (skipped where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_atomically(path: str | Path, write: Callable[[Path], object], *, temp: Path | None = None) -> Path:
    """Create or replace ``path`` with what ``write(temporary_path)`` writes; fsync, rename, fsync the folder.

    The temporary file lives in the same folder (a rename across file systems would not be atomic) and gets
    the permissions ``open()`` would give a new file; on any exception it is removed and ``path`` is untouched.
    By default it gets a fresh random hidden name; ``temp`` fixes it instead, for writers that own ``path``
    exclusively and want a rerun to find (and overwrite) what a killed run left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = -1
    if temp is None:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
    else:
        tmp = Path(temp)
    try:
        if fd >= 0:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes the file private; match what open() would create
            os.close(fd)
            fd = -1
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)
    return path


def replace_folder_atomically(folder: str | Path, fill: Callable[[Path], None]) -> Path:
    """Create or replace the folder ``folder`` with what ``fill(temporary_folder)`` writes into it.

    The temporary folder is a hidden sibling; once ``fill`` returns it is renamed into place (the old folder,
    if any, is first renamed aside, then removed), so readers see the old folder or the complete new one. On
    any exception the temporary folder is removed and ``folder`` is untouched. Both hidden names carry the
    writer's process id (``.<name>.tmp-<pid>``, ``.<name>.old-<pid>``): :func:`remove_stale_temporaries`
    removes (or, for a writer killed between the two renames, puts back) what a killed writer left.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    tmp.mkdir()
    try:
        fill(tmp)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
    except BaseException:  # an interrupt between the two renames puts the previous folder back
        if old.exists() and not folder.exists():
            os.replace(old, folder)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    fsync_dir(folder.parent)
    return folder


_TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")  # replace_atomically
_TEMP_FOLDER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)$")  # replace_folder_atomically


def writer_alive(pid: int) -> bool:
    """Whether process ``pid`` may still be writing: True unless no such process exists on this machine.

    (A writer on another machine that shares the folder is not seen from here; a lasium run folder or
    checkpoint folder has one writer, the run's own process.)
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def remove_stale_temporaries(folder: str | Path, *, subfolders: bool = True) -> list[Path]:
    """Remove what killed writers of :func:`replace_atomically` and :func:`replace_folder_atomically` left in
    ``folder`` (and its visible subfolders): temporary files and folders whose writer process is gone.

    A writer killed between its two renames left the final folder missing and the previous one aside
    (``.<name>.old-<pid>``); then the new folder (complete by then) is moved into place, or else the previous
    one is put back. Temporaries of a live process are never touched. Returns the paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed: list[Path] = []
    entries = sorted(folder.iterdir())
    for entry in entries:  # first the folders moved aside: they may be needed to restore a final folder
        m = _TEMP_FOLDER.match(entry.name)
        if not m or m["kind"] != "old" or writer_alive(int(m["pid"])) or not entry.is_dir():
            continue
        final, new = folder / m["name"], folder / f".{m['name']}.tmp-{m['pid']}"
        if not final.exists():
            os.replace(new if new.is_dir() else entry, final)
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    for entry in entries:
        m = _TEMP_FOLDER.match(entry.name) or _TEMP_FILE.match(entry.name)
        if m is None or not entry.exists() or entry.is_symlink() or writer_alive(int(m["pid"])):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    if subfolders:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
                removed += remove_stale_temporaries(entry, subfolders=False)
    if removed:
        fsync_dir(folder)
    return removed


def write_json_atomic(path: str | Path, obj: Any, *, sort_keys: bool = True) -> Path:
    """Write ``obj`` as JSON (indent 2, trailing newline; keys sorted unless ``sort_keys=False``) atomically.

    The value is serialised before any file is created, so an unserialisable value leaves nothing behind.
    """
    text = json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n"
    return replace_atomically(path, lambda tmp: tmp.write_text(text))


def write_safetensors_atomic(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """Write ``tensors`` (moved to CPU, made contiguous) and string ``metadata`` as a safetensors file atomically.

    The same tensors and metadata always give the same bytes (see :func:`canonical_safetensors`).
    """
    from safetensors.torch import save

    cpu = {key: value.detach().to("cpu").contiguous() for key, value in tensors.items()}
    data = canonical_safetensors(save(cpu, metadata=metadata))
    return replace_atomically(path, lambda tmp: tmp.write_bytes(data))


def canonical_safetensors(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its JSON header's keys sorted.

    safetensors writes the header from a hash map, so the order of its keys (``__metadata__``'s entries among them)
    changes from one call to the next and equal checkpoints got different file digests. Tensor offsets count from
    the end of the header, so rewriting it (padded with spaces to 8 bytes, as the format asks) moves no tensor.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


# ----------------------------------------------------------------------------- checked reads

HASH_BLOCK = 1 << 22


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (shards, weights), read in 4 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_safetensors(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on ``device``, string metadata); a missing, truncated or malformed file is one CheckpointError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except FileNotFoundError:  # removed between the check and the read
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete") from None
    except Exception as exc:  # safetensors raises its own SafetensorError / OSError for corrupt headers
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({first_line(exc)}); the checkpoint is corrupt"
        ) from None
    return tensors, metadata


def read_json_document(
    path: str | Path,
    *,
    format: str,  # noqa: A002 - the name of the field it checks
    max_version: int,
    what: str,
    missing_hint: str = "the checkpoint is incomplete",
) -> dict[str, Any]:
    """A JSON object whose ``format`` field is ``format`` and whose ``format_version`` is at most ``max_version``.

    ``what`` names the document in messages (e.g. "lasium learner config"); ``missing_hint`` follows the
    message for a missing file. Everything wrong is one CheckpointError line.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing; {missing_hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({first_line(exc)}); the checkpoint is corrupt") from None
    except OSError as exc:
        raise CheckpointError(f"{path} is unreadable ({first_line(exc)})") from None
    if not isinstance(data, dict) or data.get("format") != format:
        raise CheckpointError(f"{path} is not a {what} (format is not {format!r})")
    version = data.get("format_version", 0)
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise CheckpointError(f"{path} has an invalid format_version {version!r}; the checkpoint is corrupt") from None
    if version > max_version:
        raise CheckpointError(
            f"{path} has format version {version} (this lasium reads up to {max_version}); upgrade lasium to read it"
        )
    return data
