"""Where a shard set's shards are: a source (folder, manifest path or URL, brace pattern, URL, or a list of those)
resolved to its shard URLs in task order, with the set's manifest when one is known.

Decoding the shards is :mod:`lasium.shards.reader`'s job; this module only finds them (a folder's manifest, its
sidecars or its bare shard files, a remote manifest) and refuses a set that misses shards, unless partial sets are
allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lasium.errors import ShardError
from lasium.shards.format import MANIFEST_NAME, Manifest, parse_shard_file_name
from lasium.shards.manifest import build_manifest_from_sidecars, find_shard_files, find_sidecars, listing, read_manifest
from lasium.shards.remote import manifest_url, read_remote_manifest
from lasium.shards.streams import url_to_path


def _expand(pattern: str) -> list[str]:
    import braceexpand  # installed with webdataset

    return list(braceexpand.braceexpand(pattern))


PARTIAL_HINT = "finish the set (rerun its lasium-gen command), or pass --allow-partial to use only the tasks present"


def _missing_shard_numbers(files: list[Path]) -> list[str]:
    """Shard numbers absent from a folder of bare shard files (no manifest, no sidecars): 0 … the highest."""
    missing: list[str] = []
    by_name: dict[str, set[int]] = {}
    for f in files:
        parsed = parse_shard_file_name(f.name)
        if parsed is not None:
            by_name.setdefault(parsed[0], set()).add(parsed[1])
    for name, numbers in sorted(by_name.items()):
        gaps = sorted(set(range(max(numbers) + 1)) - numbers)
        missing += [f"{name}-{n:06d}" for n in gaps]
    return missing


def resolve_shard_urls(
    source: str | Path | Sequence[str | Path], *, allow_partial: bool = False
) -> tuple[list[str], Manifest | None]:
    """Shard URLs of a source, in task order, and its manifest when one is known.

    ``source``: a folder (its manifest.json; else its sidecars; else its shard files), a manifest
    path or URL (``https://host/set/manifest.json``, ``s3://bucket/set/manifest.json``: shards resolve
    next to it), a brace pattern such as ``shards/x-{000000..000009}.tar``, one URL, or a list of those.

    A folder without a manifest whose sidecars do not cover its task range (what an interrupted or
    disk-full job leaves), or whose bare shard files skip a number, is refused with an error naming what
    is missing, unless ``allow_partial`` (then only the shards present are used). A manifest is the set's
    own statement of its shards and is taken as it is (``lasium-shards index --allow-gaps`` writes
    partial ones on purpose).
    """
    if isinstance(source, (list, tuple)):
        urls = [u for item in source for u in _expand(str(item))]
        if not urls:
            raise ShardError("empty list of shards")
        return urls, None
    text = str(source)
    remote_manifest = manifest_url(text)
    if remote_manifest is not None:
        m = read_remote_manifest(remote_manifest)
        if not m.shards:
            raise ShardError(f"the manifest {remote_manifest} lists no shards")
        return [m.shard_url(e) for e in m.shards], m
    path = url_to_path(text) if not text.startswith("pipe:") else None
    if path is not None and path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            m = read_manifest(path)
        elif find_sidecars(path):
            hint = f"no {MANIFEST_NAME}, so its sidecars are all there is: {PARTIAL_HINT}"
            m = build_manifest_from_sidecars(path, allow_gaps=allow_partial, write=False, hint=hint, check_sizes=False)
        else:
            files = find_shard_files(path)
            if not files:
                raise ShardError(f"no task shards (<name>-NNNNNN.tar, .tar.gz or .h5) in {path}")
            missing = _missing_shard_numbers(files)
            if missing and not allow_partial:
                raise ShardError(
                    f"shard set in {path} is incomplete: missing shard(s) {listing(missing)} (no {MANIFEST_NAME} "
                    f"or sidecars tell their task range); {PARTIAL_HINT}"
                )
            return [str(p) for p in files], None
        if not m.shards:
            raise ShardError(f"the manifest in {path} lists no shards")
        return [m.shard_url(e) for e in m.shards], m
    if path is not None and path.suffix == ".json" and path.is_file():
        m = read_manifest(path)
        return [m.shard_url(e) for e in m.shards], m
    if path is not None and not path.exists() and "{" not in text and path.suffix in ("", ".json"):
        raise ShardError(f"shard source {text} does not exist")
    return _expand(text), None
