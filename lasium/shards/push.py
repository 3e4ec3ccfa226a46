"""Publishing a set: ``lasium-shards push DIR DEST`` copies a verified set to any fsspec destination.

Teams share data through object stores and the Hugging Face Hub; fsspec (https://filesystem-spec.readthedocs.io)
gives them one interface: ``file://`` and plain paths, ``s3://`` (s3fs), ``gs://`` (gcsfs), ``az://`` (adlfs),
``hf://datasets/<org>/<name>`` (huggingface_hub's ``HfFileSystem``), ... A push

1. verifies the set where it is (every shard's size and sha256, every task): a damaged set is never published;
2. refuses a destination that already holds a different set (its ``manifest.json`` differs) or other shards;
3. copies the set's own files, shards and sidecars first, then the card (``README.md``, ``preview.png``) and
   ``manifest.json`` last, so a destination that has a manifest has everything it lists (an interrupted push
   leaves no manifest there: push again);
4. verifies the set at the destination, reading it back as a reader would (``lasium-shards verify DEST``).

Nothing else in the folder is copied (run outputs, editor files). A destination that already holds the very same
manifest is not copied again; it is verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lasium.errors import ShardError
from lasium.shards.card import CARD_FILES
from lasium.shards.format import MANIFEST_NAME, SIDECAR_SUFFIX, parse_shard_file_name
from lasium.shards.remote import url_scheme
from lasium.shards.streams import url_to_path
from lasium.shards.verify import VerifyReport, verify_shard_set

EXTRAS = {"huggingface_hub": "'lasium[hub]'"}  # backends lasium names an extra for: what to pip install


@dataclass
class PushReport:
    """What :func:`push_set` did: the files copied (none when the destination already held the set), bytes, and
    the verification of the copy."""

    dest: str
    copied: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    already_there: bool = False
    verified: VerifyReport | None = None


def _destination_fs(dest: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for ``dest``; one-line errors for unknown schemes and missing backends."""
    import fsspec

    scheme = url_scheme(dest)
    try:
        return fsspec.core.url_to_fs(dest)
    except ImportError as exc:
        from fsspec.registry import known_implementations

        module = str(known_implementations.get(scheme or "", {}).get("class", "")).split(".", 1)[0]
        package = EXTRAS.get(module, module) or "its fsspec backend"
        raise ShardError(
            f"cannot write to {scheme}:// destinations: {str(exc).rstrip('.') or 'no backend'}; pip install {package}"
        ) from None
    except ValueError as exc:
        raise ShardError(
            f"cannot write to {dest}: {exc}; use a path, file://, s3://, gs://, hf://datasets/<org>/<name> "
            "or another fsspec URL"
        ) from None


def set_files(folder: Path, manifest: Any) -> list[Path]:
    """The files of the set in ``folder`` that a push copies, in copy order: each listed shard and its sidecar,
    the card when present, the manifest last."""
    files: list[Path] = []
    for entry in manifest.shards:
        files.append(folder / entry.file)
        sidecar = folder / (entry.file + SIDECAR_SUFFIX)
        if sidecar.is_file():
            files.append(sidecar)
    files += [folder / name for name in CARD_FILES if (folder / name).is_file()]
    files.append(folder / MANIFEST_NAME)
    return files


def _check_destination(fs: Any, root: str, dest: str, manifest_bytes: bytes, own: set[str]) -> bool:
    """True when ``dest`` already holds this very set; an error when it holds another one or other shards."""
    target = f"{root}/{MANIFEST_NAME}"
    try:
        present = fs.exists(target)
        if present:
            with fs.open(target, "rb") as f:
                there = f.read(len(manifest_bytes) + 1)
            if there == manifest_bytes:
                return True
            raise ShardError(
                f"{dest} already holds a different set (its {MANIFEST_NAME} differs); push to another "
                "destination, or remove that set first"
            )
        names = [str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)] if fs.isdir(root) else []
    except ShardError:
        raise
    except FileNotFoundError:
        return False
    except Exception as exc:  # backends raise their own types (botocore, google.auth, HfHubHTTPError, ...)
        raise ShardError(f"cannot look at {dest}: {type(exc).__name__}: {exc}") from None
    foreign = sorted(n for n in names if parse_shard_file_name(n) is not None and n not in own)
    if foreign:
        raise ShardError(
            f"{dest} already holds other shards ({', '.join(foreign[:3])}{' …' if len(foreign) > 3 else ''}) "
            "and no manifest of this set; push to another destination, or remove them first"
        )
    return False


def _copy(fs: Any, src: Path, target: str, bar: Any) -> int:
    """Upload one file with the backend's own ``put_file`` (multipart for s3fs/gcsfs, LFS-aware for the Hub, a plain
    copy for local files); the bar follows the backend's progress callback where it reports one."""
    from fsspec.callbacks import Callback

    size = src.stat().st_size
    shown = [0]

    class Progress(Callback):
        def call(self, *args: Any, **kwargs: Any) -> None:
            step = min(int(self.value or 0), size) - shown[0]
            if step > 0:
                bar.update(step)
                shown[0] += step

    fs.put_file(str(src), target, callback=Progress())
    bar.update(size - shown[0])
    return size


def push_set(folder: str | Path, dest: str, *, progress: bool = False) -> PushReport:
    """Verify the set in ``folder``, copy it to ``dest`` (a path or fsspec URL of a folder), verify the copy.

    Raises :class:`ShardError` (one line) when the set fails verification, when ``dest`` holds a different set,
    when no fsspec backend serves ``dest``'s scheme, when the copy fails, or when the copy fails verification.
    """
    from tqdm import tqdm

    from lasium.shards.manifest import read_manifest

    local = url_to_path(str(folder)) if url_scheme(str(folder)) in (None, "file") else None
    if local is None:
        raise ShardError(f"push copies a set from a local folder; {folder} is a URL (verify it with lasium-shards)")
    if not (local / MANIFEST_NAME).is_file():
        raise ShardError(
            f"no {MANIFEST_NAME} in {local}; push publishes a complete set (run 'lasium-shards index {local}' first)"
        )
    dest = dest.rstrip("/") or dest
    fs, root = _destination_fs(dest)  # before the local check: a missing backend is said at once
    report = verify_shard_set(local, progress=progress)
    if not report.ok:
        first = report.problems[0]
        raise ShardError(
            f"the set in {local} fails verification ({len(report.problems)} problem(s), first: {first}); "
            f"nothing was pushed (see lasium-shards verify {local})"
        )
    manifest_bytes = (local / MANIFEST_NAME).read_bytes()
    files = set_files(local, read_manifest(local))
    result = PushReport(dest)
    result.already_there = _check_destination(fs, root, dest, manifest_bytes, {p.name for p in files})
    if not result.already_there:
        total = sum(p.stat().st_size for p in files)
        try:
            fs.makedirs(root, exist_ok=True)
            with tqdm(
                total=total, unit="B", unit_scale=True, desc="push", disable=None if progress else True, leave=False
            ) as bar:
                for path in files:
                    result.bytes_copied += _copy(fs, path, f"{root}/{path.name}", bar)
                    result.copied.append(path.name)
        except Exception as exc:  # OSError, or a backend's own errors: one line naming the file
            where = f"{root}/{files[len(result.copied)].name}" if len(result.copied) < len(files) else root
            raise ShardError(
                f"copying to {dest} failed at {where} ({type(exc).__name__}: {exc}); nothing there is a "
                f"complete set until {MANIFEST_NAME} arrives: push again"
            ) from None
    result.verified = verify_shard_set(destination_manifest(dest), progress=progress)
    if not result.verified.ok:
        first = result.verified.problems[0]
        raise ShardError(
            f"the copy at {dest} fails verification ({len(result.verified.problems)} problem(s), first: {first}); "
            "remove it and push again"
        )
    return result


def destination_manifest(dest: str) -> str:
    """What ``lasium-shards verify`` and ``lasium-train --shards`` take for the set pushed to ``dest``: its folder
    (a path or ``file://`` URL), or the URL of its ``manifest.json``."""
    if url_scheme(dest) in (None, "file"):
        return dest
    return f"{dest.rstrip('/')}/{MANIFEST_NAME}"
