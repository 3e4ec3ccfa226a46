"""``manifest.json`` and per-shard sidecars: writing, reading, and rebuilding a manifest from sidecars.

A sidecar ``<shard file>.json`` is the manifest's header plus one ``shard`` entry, written right
after its shard is renamed into place. Array jobs on many machines therefore need no coordination:
``lasium-shards index`` (``build_manifest_from_sidecars``) rebuilds the manifest from whatever
sidecars are present and reports missing shards, overlaps and disagreeing headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lasium
from lasium.errors import ShardError
from lasium.shards.atomic import atomic_write_bytes
from lasium.shards.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SIDECAR_SUFFIX,
    Manifest,
    ShardEntry,
    canonical_json,
    check_container,
    check_header,
    check_name,
    file_compression,
    parse_json,
    parse_shard_file_name,
    task_ranges_report,
)


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


def sidecar_path(shard_path: Path) -> Path:
    return shard_path.with_name(shard_path.name + SIDECAR_SUFFIX)


def sidecar_dict(container: str, name: str, header: dict[str, Any], entry: ShardEntry) -> dict[str, Any]:
    """The sidecar record: what the manifest holds, with ``shard`` (one entry) instead of ``shards``."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "tool_version": lasium.__version__,
        "container": container,
        "name": name,
        "config": header["config"],
        "generator": header.get("generator"),
        "source": header.get("source"),
        "shard": entry.to_dict(),
    }


def write_sidecar(shard_path: Path, container: str, name: str, header: dict[str, Any], entry: ShardEntry) -> Path:
    path = sidecar_path(shard_path)
    atomic_write_bytes(path, _dump(sidecar_dict(container, name, header, entry)))
    return path


def read_sidecar(path: Path) -> tuple[Manifest, ShardEntry]:
    """A sidecar as a one-shard :class:`Manifest` (``root`` = its folder) and its entry."""
    d = _load_json(path, "sidecar")
    if not isinstance(d, dict) or "shard" not in d:
        raise ShardError(f"{path} is not a shard sidecar (no 'shard' entry); delete it and rerun the shard")
    d = dict(d)
    d["shards"] = [d.pop("shard")]
    d.pop("num_tasks", None)
    m = Manifest.from_dict(d, str(path), root=path.parent)
    entry = m.shards[0]
    if path.name != entry.file + SIDECAR_SUFFIX:
        raise ShardError(f"{path}: sidecar names shard {entry.file!r}, expected {path.name[: -len(SIDECAR_SUFFIX)]!r}")
    return m, entry


_REBUILD = {
    "manifest": "rebuild it with 'lasium-shards index'",
    "sidecar": "delete it and rerun the lasium-gen command that wrote the set (it rewrites that shard)",
}


def _load_json(path: Path, what: str) -> Any:
    """The JSON of a manifest or sidecar; missing, unreadable, binary or malformed is one ShardError line."""
    fix = _REBUILD[what]
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ShardError(f"{what} {path} not found") from None
    except OSError as exc:
        raise ShardError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ShardError(f"{what} {path} is not UTF-8 text (binary or damaged); {fix}") from None
    try:
        return parse_json(text)
    except ValueError as exc:
        raise ShardError(f"{what} {path} is not valid JSON ({exc}); {fix}") from None


def write_manifest(
    out_dir: str | Path,
    header: dict[str, Any],
    entries: Iterable[ShardEntry],
    *,
    container: str | None = None,
    name: str | None = None,
    allow_gaps: bool = False,
) -> Manifest:
    """Write ``out_dir/manifest.json`` (atomically) for ``entries``; container and name come from the files.

    Raises :class:`ShardError` on overlapping task ranges, on shards of mixed sets, and, unless
    ``allow_gaps``, when the entries do not cover tasks 0 … config num_tasks − 1.
    """
    out_dir = Path(out_dir)
    header = check_header(header)
    entries = sorted(entries, key=lambda e: e.first_task)
    suffixes = {file_compression(e.file) for e in entries}
    if len(suffixes) > 1:
        raise ShardError(
            f"the shards for {out_dir} mix .tar and .tar.gz files; a set uses one kind (rewrite the odd ones)"
        )
    for e in entries:
        parsed = parse_shard_file_name(e.file)
        if parsed is None:
            raise ShardError(f"{e.file!r} is not a shard file name (<name>-NNNNNN.tar, .tar.gz or .h5)")
        if name is None:
            name = parsed[0]
        if container is None:
            container = parsed[2]
        if (parsed[0], parsed[2]) != (name, container):
            raise ShardError(f"shard {e.file} does not belong to set {name!r} ({container}); keep one set per folder")
    if name is None or container is None:
        raise ShardError("no shards to put in the manifest; pass container= and name= to write an empty one")
    gaps, overlaps = task_ranges_report(entries, header["config"]["num_tasks"])
    if overlaps:
        raise ShardError(f"overlapping shards in {out_dir}: {'; '.join(overlaps)}")
    if gaps and not allow_gaps:
        raise ShardError(
            f"shard set in {out_dir} is incomplete (missing {', '.join(gaps)}); finish the missing shards or allow gaps"
        )
    m = Manifest(
        check_container(container),
        check_name(name),
        header["config"],
        header["generator"],
        header["source"],
        list(entries),
        lasium.__version__,
        FORMAT_VERSION,
        out_dir,
    )
    _write_manifest_file(out_dir, m)
    return m


def _write_manifest_file(folder: Path, m: Manifest) -> None:
    path = folder / MANIFEST_NAME
    if path.is_dir() and not path.is_symlink():
        raise ShardError(f"{path} is a folder, not a file; remove it and rerun")
    atomic_write_bytes(path, _dump(m.to_dict()))


def read_manifest(path_or_dir: str | Path) -> Manifest:
    """Read and validate a manifest, given its path or the folder holding ``manifest.json``."""
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / MANIFEST_NAME
    return Manifest.from_dict(_load_json(path, "manifest"), str(path), root=path.parent)


def find_shard_files(folder: Path) -> list[Path]:
    """Completed shard files in ``folder`` (hidden temporary files are not shards), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if parse_shard_file_name(p.name) is not None and p.is_file())


def find_sidecars(folder: Path) -> list[Path]:
    """Sidecars (``<shard file>.json``) in ``folder``, sorted by name."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.name.endswith(SIDECAR_SUFFIX) and parse_shard_file_name(p.name[: -len(SIDECAR_SUFFIX)]) and p.is_file()
    )


def listing(items: list[str], limit: int = 5) -> str:
    """``a, b, c`` for a few items; the first ``limit`` and a count of the rest for many."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def build_manifest_from_sidecars(
    folder: str | Path,
    *,
    allow_gaps: bool = False,
    write: bool = True,
    hint: str = "rerun the missing shards or allow gaps",
    check_sizes: bool = True,
) -> Manifest:
    """Rebuild ``manifest.json`` from the sidecars in ``folder`` (``lasium-shards index``).

    Every sidecar must agree on format, container, name and header (config, generator, source) and
    its shard file must exist with the recorded size. A shard file without a sidecar counts as
    missing (its write may not have finished). Gaps are errors unless ``allow_gaps``; the error names
    the missing task ranges and ends with ``hint`` (what to do). ``check_sizes=False`` keeps a shard whose
    size differs from its sidecar's record (a reader that checks every shard's size and sha256 then reports it
    as damaged, rather than leaving it out as if it were missing).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ShardError(f"shard folder {folder} does not exist")
    sidecars = find_sidecars(folder)
    if not sidecars:
        raise ShardError(f"no shard sidecars (<shard>.json) in {folder}; is this a shard folder written by lasium?")
    first: Manifest | None = None
    first_key = ""
    entries: list[ShardEntry] = []
    problems: list[str] = []
    for path in sidecars:
        m, entry = read_sidecar(path)
        key = canonical_json({k: v for k, v in m.to_dict().items() if k not in ("shards", "num_tasks", "tool_version")})
        if first is None:
            first, first_key = m, key
        elif key != first_key:
            raise ShardError(
                f"sidecar {path.name} disagrees with {sidecars[0].name} on the set's config, generator, source, name "
                "or container; a folder must hold one shard set"
            )
        elif m.tool_version != first.tool_version:
            raise ShardError(
                f"sidecar {path.name} was written by lasium {m.tool_version}, "
                f"{sidecars[0].name} by {first.tool_version}; "
                "regenerate the shards with one version"
            )
        shard = folder / entry.file
        if not shard.is_file():
            problems.append(f"{entry.file} (sidecar without shard)")
            continue
        if check_sizes and shard.stat().st_size != entry.bytes:
            problems.append(f"{entry.file} (size {shard.stat().st_size} != {entry.bytes} in sidecar)")
            continue
        entries.append(entry)
    assert first is not None
    with_sidecar = {e.file for e in entries} | {p.name[: -len(SIDECAR_SUFFIX)] for p in sidecars}
    orphans = [p.name for p in find_shard_files(folder) if p.name not in with_sidecar]
    problems += [f"{o} (shard without sidecar: unfinished write?)" for o in orphans]
    if len({file_compression(e.file) for e in entries}) > 1:
        raise ShardError(f"{folder} mixes .tar and .tar.gz shards; a set uses one kind (regenerate the odd ones)")
    gaps, overlaps = task_ranges_report(entries, first.config["num_tasks"])
    if overlaps:
        raise ShardError(f"overlapping shards in {folder}: {'; '.join(overlaps)}")
    if (gaps or problems) and not allow_gaps:
        missing = [f"missing {listing(gaps)}"] if gaps else []
        detail = "; ".join(([listing(problems, 3)] if problems else []) + missing)
        raise ShardError(f"shard set in {folder} is incomplete: {detail}; {hint}")
    m = Manifest(
        first.container,
        first.name,
        first.config,
        first.generator,
        first.source,
        entries,
        first.tool_version,
        FORMAT_VERSION,
        folder,
    )
    if write:
        _write_manifest_file(folder, m)
    return m
