"""Which shards a training run reads, and their common task layout (a thin layer over ``lasium.shards``).

``--shards`` may be given several times; each value is a folder, a ``manifest.json``, a brace pattern
or a URL (``file:``, ``pipe:``), of either container. A folder that holds shard sets in subfolders (and no
set itself) stands for all of them, e.g. ``shards/omniglot`` for ``shards/omniglot/oc`` and
``shards/omniglot/ro``. All shards must hold tasks of one layout (N, K_tr, K_val, image shape): the
trainer stacks them into one tensor. The layout of each source comes from its
manifest, else from a shard's sidecar, else from its first task; disagreeing sources are refused here,
before training starts, and a shard that disagrees with its manifest is refused by name when read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np

from lasium.errors import LasiumError, ShardError
from lasium.shards.format import GENERATOR_SOURCE, MANIFEST_NAME, SIDECAR_SUFFIX, Manifest, ShardEntry, TaskLayout
from lasium.shards.locate import resolve_shard_urls
from lasium.shards.manifest import find_shard_files, find_sidecars, read_sidecar
from lasium.shards.reader import LazyTask, iter_shard_tasks, iter_shard_tasks_lazy
from lasium.shards.streams import url_to_path
from lasium.tasks import hwc


def describe_layout(layout: TaskLayout) -> str:
    h, w, c = layout.image_shape
    return f"{layout.ways}-way {layout.shots}+{layout.queries}-shot {h}x{w}x{c}"


def _core(layout: TaskLayout) -> TaskLayout:
    """The part of a layout that stacking needs (latents are not used for training)."""
    return TaskLayout(layout.ways, layout.shots, layout.queries, hwc(layout.image_shape))


@dataclass
class ShardSet:
    """Shard URLs to train on, their common layout, and the manifest entry of each shard where known."""

    urls: list[str]
    layout: TaskLayout
    entries: dict[str, ShardEntry] = field(default_factory=dict)
    checked_layouts: dict[str, TaskLayout] = field(default_factory=dict)  # full layout (latents too) per manifest shard
    # the kinds of task source the sets record (their config's "source": generator, real, umtra, …; None: not
    # recorded, e.g. shards read through pipe: or a URL list without a manifest)
    task_sources: set[str | None] = field(default_factory=set)
    notes: list[str] = field(
        default_factory=list
    )  # folders of shard sets expanded into their sets, sources without a recorded kind, shards whose bytes cannot
    # be checked ("warning: …"); the trainer prints each, the others as "note: …"
    # what each --shards value (after folder expansion) resolved to: (shard URLs, its manifest or None), so callers
    # never resolve a value twice (a remote manifest is one GET)
    resolved: dict[str, tuple[list[str], Manifest | None]] = field(default_factory=dict)

    @property
    def generated(self) -> bool:
        """Whether every task was made by a generative model (LASIUM), as the sets record it.

        Real, UMTRA and CACTUs tasks are real images (UMTRA's queries augmented already); so are, as far as anyone
        can tell, tasks whose set records no task source (a ``pipe:`` or URL list without a manifest).
        """
        return self.task_sources == {GENERATOR_SOURCE}

    def describe(self) -> str:
        return f"{len(self.urls)} shard(s) of {describe_layout(self.layout)} tasks"

    def lazy_tasks(self, url: str) -> Iterator[tuple[int, Callable[[], tuple[np.ndarray, np.ndarray]]]]:
        """(task index, decode) of every task of shard ``url``; ``decode()`` gives (support, query), checked
        against the set's layout (the trainer's shuffle buffer holds tasks undecoded).

        Reading is ``lasium.shards.reader.iter_shard_tasks_lazy`` (safe, no pickle): a shard with a manifest or
        sidecar entry is checked against its size and sha256 before its first task is yielded, so a shard whose
        bytes differ yields nothing; its members, keys and task range are checked as it is read. Any failure, read
        or ``decode()``, is a :class:`ShardError` that names the shard.
        """
        layout = self.checked_layouts.get(url)
        try:
            with closing(iter_shard_tasks_lazy(url, layout=layout, entry=self.entries.get(url))) as tasks:
                for lazy in tasks:
                    yield lazy.index, partial(self._decode, url, lazy, layout)
        except LasiumError:
            raise
        except Exception as exc:  # anything the container libraries raise on a damaged file
            raise ShardError(
                f"{url}: cannot read the shard ({type(exc).__name__}: {exc}); it is damaged, regenerate or re-copy it"
            ) from None

    def _decode(self, url: str, lazy: LazyTask, layout: TaskLayout | None) -> tuple[np.ndarray, np.ndarray]:
        try:
            task = lazy.decode()
        except LasiumError:
            raise
        except Exception as exc:  # anything the image codecs raise on damaged members
            raise ShardError(
                f"{url}: cannot decode task {lazy.index} ({type(exc).__name__}: {exc}); the shard is damaged, "
                "regenerate or re-copy it"
            ) from None
        if layout is None:
            self.layout.check_arrays(task.support, task.query, None, f"{url}: task {task.meta.get('index')}")
        return task.support, task.query


def _sidecar(url: str) -> tuple[Manifest, ShardEntry] | None:
    """The sidecar of a local shard given by path (its one-shard manifest and entry), if it has one."""
    path = url_to_path(url) if not url.startswith("pipe:") else None
    if path is None:
        return None
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return None
    return read_sidecar(sidecar)


def _first_task_layout(url: str) -> TaskLayout:
    tasks = iter_shard_tasks(url)
    try:
        first = next(islice(tasks, 1), None)
    finally:
        tasks.close()
    if first is None:
        raise ShardError(f"{url} holds no tasks")
    return TaskLayout(first.ways, first.shots, first.queries, first.image_shape)


def _is_local(url: str) -> bool:
    return not url.startswith("pipe:") and url_to_path(url) is not None


def _is_shard_set(folder: Path) -> bool:
    return (folder / MANIFEST_NAME).is_file() or bool(find_sidecars(folder)) or bool(find_shard_files(folder))


def find_shard_sets(folder: Path) -> list[Path]:
    """The shard sets under ``folder`` (any depth; a set's own subfolders are not searched), in name order."""
    found: list[Path] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found.extend([sub] if _is_shard_set(sub) else find_shard_sets(sub))
    return found


def expand_sources(sources: Sequence[str | Path], *, allow_partial: bool = False) -> tuple[list[str], list[str]]:
    """``--shards`` values with every folder of shard sets replaced by its sets, and a note on each such folder.

    A local folder that is no shard set itself (no manifest, sidecar or shard file) but holds sets in subfolders,
    e.g. ``shards/omniglot`` after ``lasium-gen`` wrote ``shards/omniglot/oc`` and ``shards/omniglot/ro``,
    stands for all of them, read as one mixture. Other values are kept as they are.
    """
    out: list[str] = []
    notes: list[str] = []
    for source in sources:
        text = str(source)
        path = url_to_path(text) if not text.startswith("pipe:") else None
        if path is None or not path.is_dir() or _is_shard_set(path):
            out.append(text)
            continue
        sets = find_shard_sets(path)
        if not sets:
            raise ShardError(
                f"no task shards in {path} nor in its subfolders; check "
                "--shards (lasium-gen writes shards/<dataset>/<strategy>)"
            )
        counts = []
        for folder in sets:
            counts.append(f"{folder.relative_to(path)} ({_num_tasks(folder, allow_partial)} tasks)")
            out.append(str(folder))
        notes.append(f"{path}: {len(sets)} shard set(s), trained as one mixture: {', '.join(counts)}")
    return out, notes


def _num_tasks(folder: Path, allow_partial: bool) -> str:
    found, manifest = resolve_shard_urls(folder, allow_partial=allow_partial)
    return f"{manifest.num_tasks:,}" if manifest is not None else f"{len(found)} shard(s), ?"


def run_name(sources: Sequence[str | Path]) -> str:
    """``<name>`` of lasium-train's default run folder ``runs/<name>-<algo>``: the first --shards value's path below a
    ``shards`` folder with '/' as '-' (shards/omniglot → omniglot, shards/omniglot/oc → omniglot-oc), else its last
    folder name (a manifest.json or URL: the folder holding it); several values: the names joined with '+'."""
    names = []
    for source in sources:
        text = str(source).rstrip("/")
        if text.startswith("pipe:") or "{" in text:
            text = text.split("{", 1)[0]
        parts = [p for p in re.split(r"[/\\]", text.split("://", 1)[-1]) if p and p not in (".", "..")]
        if parts and (
            parts[-1] == MANIFEST_NAME or "." in parts[-1] and parts[-1].endswith((".tar", ".gz", ".h5", ".json"))
        ):
            parts = parts[:-1]
        if "shards" in parts[:-1]:
            parts = parts[len(parts) - parts[::-1].index("shards") :]
        elif parts:
            parts = parts[-1:]
        names.append("-".join(parts) or "tasks")
    name = "+".join(names) if len(names) <= 3 else f"{names[0]}+{len(names) - 1}-more"
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", name).strip(".-") or "tasks"


def open_shard_set(sources: str | Path | Sequence[str | Path], *, allow_partial: bool = False) -> ShardSet:
    """Resolve ``--shards`` values to one :class:`ShardSet`, refusing missing shards and mixed layouts.

    A folder of shard sets stands for all of them (:func:`expand_sources`); ``ShardSet.notes`` says which were found.
    A set without a manifest whose shards leave task ranges uncovered is refused unless ``allow_partial``
    (:func:`lasium.shards.locate.resolve_shard_urls`). Every shard with a manifest entry, or given by path with
    a sidecar beside it, is checked against that entry's size and sha256 when it is read.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    sources, notes = expand_sources(sources, allow_partial=allow_partial)
    urls: list[str] = []
    entries: dict[str, ShardEntry] = {}
    checked: dict[str, TaskLayout] = {}
    layouts: list[tuple[str, TaskLayout]] = []  # (where, layout) for every source and unmanifested shard
    remote_checked = False
    kinds: set[str | None] = set()
    resolved: dict[str, tuple[list[str], Manifest | None]] = {}
    for source in sources:
        found, manifest = resolve_shard_urls(source, allow_partial=allow_partial)
        resolved[str(source)] = (found, manifest)
        if manifest is not None:
            _add_manifest(manifest, found, entries, checked)
            layouts.append((str(source), manifest.layout))
            kind = manifest.task_source
        else:
            first = _sidecar(found[0]) if found else None
            kind = first[0].task_source if first is not None else None
            for url in found:
                if _is_local(url):
                    path = url_to_path(url)
                    if path is not None and not path.is_file():
                        raise ShardError(f"shard {url} not found; check --shards")
                    sidecar = _sidecar(url)
                    if sidecar is not None:  # the sidecar vouches for the shard: its entry is checked on reading
                        entries[url], checked[url] = sidecar[1], sidecar[0].layout
                        layouts.append((url, sidecar[0].layout))
                    else:
                        layouts.append((url, _first_task_layout(url)))
                elif not remote_checked:  # remote: peek at the first shard; the rest are checked as they stream
                    layouts.append((url, _first_task_layout(url)))
                    remote_checked = True
        unchecked = [u for u in found if u not in entries]
        if unchecked:
            notes.append(
                f"warning: {len(unchecked)} shard(s) of {source} have no manifest or sidecar: their bytes cannot be "
                "checked (task layouts still are)"
            )
        kinds.add(kind)
        if kind is None:
            notes.append(
                f"{source}: no manifest or sidecar records which task source made these shards; --augment auto "
                "treats them as real images (none); give --augment shift5-affine if a generator made them"
            )
        urls.extend(found)
    if not urls:
        raise ShardError(f"no shards found in {', '.join(map(str, sources))}")
    duplicates = sorted({u for u in urls if urls.count(u) > 1})
    if duplicates:
        raise ShardError(f"shard {duplicates[0]} is given more than once; list each shard once")
    where0, layout0 = layouts[0]
    for where, layout in layouts[1:]:
        if _core(layout) != _core(layout0):
            raise ShardError(
                f"mixed shard configurations: {where} holds {describe_layout(layout)} tasks but {where0} holds "
                f"{describe_layout(layout0)}; train on shards of one configuration"
            )
    return ShardSet(urls, _core(layout0), entries, checked, kinds, notes, resolved)


def _add_manifest(
    manifest: Manifest, urls: list[str], entries: dict[str, ShardEntry], checked: dict[str, TaskLayout]
) -> None:
    for url, entry in zip(urls, manifest.shards):
        path = url_to_path(url)
        if path is not None and not path.is_file():
            raise ShardError(
                f"shard {entry.file} listed in the manifest of {manifest.root} is missing; "
                "re-copy it or rebuild the manifest with 'lasium-shards index'"
            )
        entries[url] = entry
        checked[url] = manifest.layout
