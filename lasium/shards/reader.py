"""Reading task shards safely, from either container, as :class:`lasium.tasks.Task` records.

Safety rule (README "Safety"): only the members the spec names are decoded, with
``np.lib.format.read_array(..., allow_pickle=False)`` and ``json.loads``; any other tar member or
HDF5 object is refused with a :class:`ShardError` naming it and the shard. Nothing is unpickled.

The trainer uses no WebDataset pipeline: :mod:`lasium.train.streaming` takes the shard list from
:func:`lasium.shards.locate.resolve_shard_urls` (where the shards are) and reads each shard with
:func:`iter_shard_tasks`, with its own shard shuffling, shuffle buffer and rank/worker split.
:func:`decode_wds_sample` decodes raw samples of a stock ``webdataset.WebDataset(urls)`` for users who build their
own pipeline; :func:`iter_tasks` is the simple sequential reader used by tools and tests.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np

from lasium.errors import LasiumError, ShardError
from lasium.shards.format import (
    HDF5_DATASETS,
    IMAGE_CODEC_SUFFIXES,
    TASK_KEY_RE,
    WDS_MEMBERS,
    ShardEntry,
    TaskLayout,
    container_of,
    parse_json,
)
from lasium.shards.gz import GzipReader, tar_stream
from lasium.shards.integrity import ShardIntegrityError, open_checked_shard, same_file
from lasium.shards.locate import resolve_shard_urls
from lasium.shards.remote import is_remote
from lasium.shards.streams import BUFFER, PipeStream, Readable, close_stream, open_url, read_all, url_to_path
from lasium.shards.tario import iter_tar_members
from lasium.tasks import Task

_NPY_DTYPES = {"support.npy": np.dtype(np.uint8), "query.npy": np.dtype(np.uint8), "latents.npy": np.dtype(np.float16)}
HDF5_BLOCK = 256  # tasks read per HDF5 slice


_HEADER_CACHE: dict[bytes, tuple[np.dtype, tuple[int, ...], bool, int]] = {}  # npy header bytes -> parsed header


def _npy_header_length(data: bytes) -> int:
    if data[:6] != b"\x93NUMPY" or len(data) < 12:
        return -1
    if data[6] == 1:
        return 10 + int.from_bytes(data[8:10], "little")
    if data[6] in (2, 3):
        return 12 + int.from_bytes(data[8:12], "little")
    return -1


def decode_npy(data: bytes, member: str, shard: str) -> np.ndarray:
    """Decode a ``.npy`` member without pickle; its dtype must be the one the spec gives the member.

    The header is parsed by numpy's own (literal-only) header reader, never with pickle; parsed
    headers are cached since every task of a set has the same ones.
    """
    suffix = member.split(".", 1)[1] if "." in member else member
    want = _NPY_DTYPES[suffix]
    end = _npy_header_length(data)
    if end < 0 or end > len(data):
        raise ShardError(f"{shard}: member {member} is not an npy array (bad magic or header); refusing it")
    head = data[:end]
    parsed = _HEADER_CACHE.get(head)
    if parsed is None:
        try:
            fp = io.BytesIO(head)
            version = np.lib.format.read_magic(fp)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(fp)
        except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, tokenize.TokenError, ...
            raise ShardError(
                f"{shard}: member {member} has a corrupt npy header ({type(exc).__name__}: {exc}); refusing it"
            ) from None
        if dtype.hasobject:
            raise ShardError(f"{shard}: member {member} holds an object array, which needs pickle; refusing it")
        if dtype != want:
            raise ShardError(f"{shard}: member {member} has dtype {dtype}, the format requires {want}")
        parsed = (dtype, tuple(shape), bool(fortran), int(np.prod(shape, dtype=np.int64)))
        if len(_HEADER_CACHE) < 64:
            _HEADER_CACHE[head] = parsed
    dtype, shape, fortran, count = parsed
    if len(data) - end != count * dtype.itemsize:
        raise ShardError(
            f"{shard}: member {member} holds {len(data) - end} data bytes, its header says {count * dtype.itemsize}"
        )
    arr = np.frombuffer(data, dtype, count, end).reshape(shape, order="F" if fortran else "C")
    return arr.copy(order="K")  # own, writable memory (the tar bytes are immutable)


def decode_wds_sample(sample: dict[str, Any], shard: str | None = None, layout: TaskLayout | None = None) -> Task:
    """Turn one raw WebDataset sample (``{"__key__": ..., "support.npy": bytes, ...}``) into a Task.

    Unknown members are refused before anything is decoded; ``layout`` (from the manifest) adds
    shape checks. Works on samples from ``webdataset.WebDataset(urls)`` without ``.decode()``.
    """
    shard = shard or str(sample.get("__url__", "<unknown shard>"))
    index = _check_wds_sample(sample, shard)
    key = str(sample.get("__key__", "?"))
    support = _decode_images(sample, "support", key, shard, layout)
    query = _decode_images(sample, "query", key, shard, layout)
    latents = decode_npy(sample["latents.npy"], f"{key}.latents.npy", shard) if "latents.npy" in sample else None
    meta = _decode_meta(sample["meta.json"], f"{key}.meta.json", shard)
    return _make_task(support, query, latents, meta, index, f"{shard}: task {key}", layout)


def _check_wds_sample(sample: dict[str, Any], shard: str) -> int:
    """What a sample must be before anything of it is decoded: only the spec's members, a ``task-<9 digits>`` key
    and a ``meta.json``. Returns the task index of the key."""
    key = str(sample.get("__key__", "?"))
    for member in sample:
        if member.startswith("__") and member.endswith("__"):
            continue  # webdataset's bookkeeping (__key__, __url__, __local_path__)
        if member not in WDS_MEMBERS:
            raise ShardError(
                f"{shard}: sample {key} has member {key}.{member}, which the task-shard format does not define; "
                f"refusing to decode it (only {', '.join(WDS_MEMBERS)} are read)"
            )
    m = TASK_KEY_RE.fullmatch(key.rsplit("/", 1)[-1])
    if not m:
        raise ShardError(f"{shard}: sample key {key!r} is not task-<9 digits>; not a task shard")
    if "meta.json" not in sample:
        raise ShardError(f"{shard}: sample {key} lacks meta.json; the shard is incomplete or not a task shard")
    return int(m.group(1))


@dataclass(frozen=True)
class LazyTask:
    """A task read from a shard whose arrays are decoded only when ``decode()`` is called.

    The trainer's shuffle buffer holds these (:mod:`lasium.train.streaming`): a buffer of hundreds of 84×84×3 tasks
    then holds their encoded bytes, and a run's first meta-batch waits for its own tasks' decoding only, not for
    the whole buffer's. ``index`` is the task index of the sample's key (checked against the shard's manifest entry
    when read); ``decode()`` checks the rest (the members, ``meta.json``, shapes) and raises :class:`ShardError`.
    """

    index: int
    load: Callable[[], Task]

    def decode(self) -> Task:
        return self.load()


def _decode_images(sample: dict[str, Any], split: str, key: str, shard: str, layout: TaskLayout | None) -> np.ndarray:
    """The ``support`` or ``query`` array of a sample: a ``.npy`` member, or an image member of the set's codec
    (:mod:`lasium.shards.codecs`), which needs the set's layout to be cut back into (N, K, H, W, C)."""
    members = [m for m in sample if m.startswith(split + ".")]
    if not members:
        raise ShardError(f"{shard}: sample {key} lacks {split}.npy; the shard is incomplete or not a task shard")
    if len(members) > 1:
        raise ShardError(f"{shard}: sample {key} has {' and '.join(members)}; a task stores its {split} once")
    member = members[0]
    suffix = member.split(".", 1)[1]
    codec_name = layout.image_codec if layout is not None else None
    want = IMAGE_CODEC_SUFFIXES[codec_name] if codec_name is not None else None
    if want is not None and suffix != want:
        raise ShardError(
            f"{shard}: sample {key} has {member}, but the set's image codec is {codec_name} "
            f"({split}.{want}); the shard is not of this set"
        )
    if suffix == "npy":
        return decode_npy(sample[member], f"{key}.{member}", shard)
    if layout is None:
        raise ShardError(
            f"{shard}: sample {key} stores its images as {member}, which needs the set's layout: read the shard "
            "through its set folder, manifest or sidecar (<shard>.json beside it)"
        )
    from lasium.shards.codecs import get_image_codec

    codec = get_image_codec(layout.image_codec)
    assert codec is not None
    shape = layout.support_shape() if split == "support" else layout.query_shape()
    return codec.decode(sample[member], shape, f"{key}.{member}", shard)


def _decode_meta(data: bytes | str, member: str, shard: str) -> dict[str, Any]:
    try:
        meta = parse_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ShardError(f"{shard}: {member} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ShardError(f"{shard}: {member} must hold a JSON object, got {type(meta).__name__}")
    return meta


def _make_task(
    support: np.ndarray,
    query: np.ndarray,
    latents: np.ndarray | None,
    meta: dict[str, Any],
    index: object,
    where: str,
    layout: TaskLayout | None,
) -> Task:
    if meta.get("index") != index:
        raise ShardError(f"{where}: meta index {meta.get('index')!r} does not match the task index {index}")
    task = Task(support, query, latents, meta)
    try:
        task.check()
    except ValueError as exc:
        raise ShardError(f"{where}: {exc}") from None
    if layout is not None:
        layout.check_arrays(support, query, latents, where)
    return task


def _group_members(members: Iterable[tuple[str, bytes]], shard: str) -> Iterator[dict[str, Any]]:
    """Group consecutive tar members by key (the member name up to its first dot), like WebDataset."""
    sample: dict[str, Any] | None = None
    seen: set[str] = set()
    for name, data in members:
        head, _, base = name.rpartition("/")
        stem, dot, suffix = base.partition(".")
        if not dot:
            raise ShardError(f"{shard}: tar member {name} has no extension; not a task-shard member")
        key = f"{head}/{stem}" if head else stem
        if sample is None or key != sample["__key__"]:
            if sample is not None:
                yield sample
            if key in seen:
                raise ShardError(
                    f"{shard}: members of sample {key} are not contiguous (key seen twice); the shard is malformed"
                )
            seen.add(key)
            sample = {"__key__": key, "__url__": shard}
        if suffix in sample:
            raise ShardError(f"{shard}: duplicate member {name}")
        sample[suffix] = data
    if sample is not None:
        yield sample


class _IndexCheck:
    """Checks that a shard's tasks are the manifest entry's range, in order."""

    def __init__(self, shard: str, entry: ShardEntry | None) -> None:
        self.shard, self.entry, self.count = shard, entry, 0

    def next(self, index: object) -> None:
        if self.entry is not None:
            want = self.entry.first_task + self.count
            if index != want:
                raise ShardError(f"{self.shard}: holds task {index} where the manifest expects task {want}")
        self.count += 1

    def done(self) -> None:
        if self.entry is not None and self.count != self.entry.num_tasks:
            raise ShardError(
                f"{self.shard}: holds {self.count} tasks, the manifest "
                f"says {self.entry.num_tasks}; regenerate or re-copy it"
            )


def iter_wds_stream(
    stream: Readable, url: str, layout: TaskLayout | None = None, entry: ShardEntry | None = None
) -> Iterator[Task]:
    """The tasks of a tar stream already opened (``url`` names it in messages); a gzip-compressed tar
    (``.tar.gz``) is decompressed on the fly and read to its end, so its CRC is checked."""
    for lazy in iter_wds_stream_lazy(stream, url, layout, entry):
        yield lazy.decode()


def iter_wds_stream_lazy(
    stream: Readable, url: str, layout: TaskLayout | None = None, entry: ShardEntry | None = None
) -> Iterator[LazyTask]:
    """:func:`iter_wds_stream` with each task's arrays decoded only when its ``decode()`` is called; the stream's
    own checks (members, keys, the manifest entry's range, the gzip CRC) happen as it is read."""
    check = _IndexCheck(url, entry)
    tar = tar_stream(stream, url)
    for sample in _group_members(iter_tar_members(tar, url), url):
        index = _check_wds_sample(sample, url)
        check.next(index)
        yield LazyTask(index, partial(decode_wds_sample, sample, url, layout))
    check.done()
    if isinstance(tar, GzipReader):
        tar.finish()


def iter_wds_shard(
    url: str, layout: TaskLayout | None = None, entry: ShardEntry | None = None
) -> Generator[LazyTask, None, None]:
    """The lazily decoded tasks of the tar shard at ``url``, opened here and closed when done or closed early."""
    stream = open_url(url)
    finished = False
    try:
        try:
            yield from iter_wds_stream_lazy(stream, url, layout, entry)
            if isinstance(stream, PipeStream):
                while stream.read(BUFFER):  # drain record padding so the command is not killed by SIGPIPE
                    pass
        except ShardError as exc:
            failure = stream.failure(timeout=2.0) if isinstance(stream, PipeStream) else None
            if failure:  # the real cause: the command behind pipe: failed
                raise ShardError(f"{url}: {failure}") from exc
            raise
        finished = True
    finally:
        close_stream(stream, check=finished)


def _hdf5_datasets(f: Any, url: str) -> dict[str, Any]:
    """The named datasets of an HDF5 shard, refusing anything else (links, groups, odd dtypes, external data)."""
    import h5py

    found: dict[str, Any] = {}
    for key in f.keys():
        link = f.get(key, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise ShardError(
                f"{url}: HDF5 object {key!r} is a {type(link).__name__}; task shards hold plain datasets only"
            )
        if key not in HDF5_DATASETS:
            raise ShardError(
                f"{url}: HDF5 object {key!r} is not defined by the task-shard format; refusing it "
                f"(only {', '.join(HDF5_DATASETS)} are read)"
            )
        ds = f[key]
        if not isinstance(ds, h5py.Dataset) or ds.is_virtual or ds.external:
            raise ShardError(
                f"{url}: HDF5 object {key!r} must be a plain dataset (not a group, virtual or external dataset)"
            )
        if ds.ndim < 1:
            raise ShardError(f"{url}: dataset {key!r} is a scalar; a task shard holds one row per task")
        if key == "meta":
            if h5py.check_string_dtype(ds.dtype) is None or ds.ndim != 1:
                raise ShardError(f"{url}: dataset 'meta' must be a 1-D string dataset, got {ds.dtype} {ds.shape}")
        else:
            want = np.float16 if key == "latents" else np.uint8
            if ds.dtype != want:
                raise ShardError(f"{url}: dataset {key!r} has dtype {ds.dtype}, the format requires {np.dtype(want)}")
        found[key] = ds
    for key in ("support", "query", "meta"):
        if key not in found:
            raise ShardError(f"{url}: HDF5 shard lacks dataset {key!r}; not a task shard")
    count = found["support"].shape[0]
    if any(ds.shape[0] != count for ds in found.values()):
        raise ShardError(
            f"{url}: datasets disagree on the number of tasks: "
            + ", ".join(f"{k}{ds.shape}" for k, ds in found.items())
        )
    return found


def _hdf5_first_task(f: Any, url: str, count: int) -> int | None:
    """``first_task`` from the ``lasium_shard`` attribute (None if the file has none)."""
    raw = f.attrs.get("lasium_shard")
    if raw is None:
        return None
    try:
        shard = parse_json(raw)
        version, first, num = shard.get("format_version", 1), int(shard["first_task"]), int(shard["num_tasks"])
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ShardError(f"{url}: attribute lasium_shard is not the JSON shard entry the format defines") from None
    if isinstance(version, int) and version > 1:
        raise ShardError(f"{url} uses format version {version}; this lasium reads version 1: upgrade lasium")
    if num != count:
        raise ShardError(
            f"{url}: attribute lasium_shard says {num} tasks, the datasets hold {count}; the shard is damaged"
        )
    return first


def iter_hdf5_shard(
    url: str,
    layout: TaskLayout | None = None,
    entry: ShardEntry | None = None,
    *,
    data: bytes | IO[bytes] | None = None,
    same_as: IO[bytes] | None = None,
) -> Generator[Task, None, None]:
    """The tasks of an HDF5 shard (``data``: its bytes, or a seekable file of them, already fetched from ``url``;
    ``same_as``: a checked local file that the file h5py opens at ``url`` must be, unchanged)."""
    import h5py

    path = None if url.startswith("pipe:") or is_remote(url) or data is not None else url_to_path(url)
    try:
        if data is not None:
            f = h5py.File(io.BytesIO(data) if isinstance(data, bytes) else data, "r")
        elif path is not None:
            if not path.is_file():
                raise ShardError(f"shard {url} not found")
            f = h5py.File(path, "r")
        else:  # HDF5 needs random access: fetch the stream (pipe:, URL) into memory
            f = h5py.File(io.BytesIO(read_all(url)), "r")
    except LasiumError:
        raise
    except Exception as exc:  # OSError mostly; h5py raises other kinds on some damaged files
        raise ShardError(
            f"{url}: not a readable HDF5 file ({exc}); the shard is truncated or damaged, regenerate or re-copy it"
        ) from None
    with f:
        if same_as is not None and not same_file(same_as, f.id.get_vfd_handle()):
            raise ShardIntegrityError(f"{url} changed after it was checked; rerun when nothing writes it")
        yield from _iter_hdf5_file(f, url, layout, entry)


def _iter_hdf5_file(f: Any, url: str, layout: TaskLayout | None, entry: ShardEntry | None) -> Iterator[Task]:
    try:
        found = _hdf5_datasets(f, url)
        count = found["support"].shape[0]
        first = _hdf5_first_task(f, url, count)
    except LasiumError:
        raise
    except Exception as exc:  # h5py and the HDF5 library raise many kinds of error on damaged files
        raise ShardError(
            f"{url}: cannot read the HDF5 structure ({type(exc).__name__}: {exc}); the shard is damaged"
        ) from None
    if entry is not None and first is not None and (first, count) != (entry.first_task, entry.num_tasks):
        raise ShardError(
            f"{url}: holds tasks {first}..{first + count - 1}, the manifest says "
            f"{entry.first_task}..{entry.first_task + entry.num_tasks - 1}; regenerate or re-copy it"
        )
    check = _IndexCheck(url, entry)
    for a in range(0, count, HDF5_BLOCK):
        b = min(count, a + HDF5_BLOCK)
        try:
            blocks = {k: ds[a:b] for k, ds in found.items()}
        except Exception as exc:  # as above: any error of h5py on a damaged file is the shard's damage
            raise ShardError(
                f"{url}: cannot read tasks {a}..{b - 1} ({type(exc).__name__}: {exc}); the shard is damaged, "
                "regenerate or re-copy it"
            ) from None
        for i in range(b - a):
            lat = blocks["latents"][i] if "latents" in blocks else None
            meta = _decode_meta(blocks["meta"][i], f"meta[{a + i}]", url)
            # the row's task index: from the file's shard attribute, else the manifest, else trust meta
            index = (
                first + a + i
                if first is not None
                else entry.first_task + a + i
                if entry is not None
                else meta.get("index")
            )
            task = _make_task(
                blocks["support"][i], blocks["query"][i], lat, meta, index, f"{url}: task {index}", layout
            )
            check.next(index)
            yield task
    check.done()


def iter_shard_tasks(
    url: str, *, layout: TaskLayout | None = None, entry: ShardEntry | None = None, container: str | None = None
) -> Generator[Task, None, None]:
    """The tasks of one shard (``.tar``, ``.tar.gz`` or ``.h5``; plain path, ``file:``, ``pipe:`` or remote URL).

    With ``entry`` (from the manifest or the shard's sidecar) the shard's size and sha256 are checked before
    any task is decoded (:func:`lasium.shards.integrity.open_checked_shard`): a shard whose bytes differ
    yields no task and raises :class:`ShardError` naming it; its tasks must also be the entry's range, in
    order. ``layout`` adds shape checks. A reader that stops early calls ``close()`` on the generator, which
    closes the shard's file or pipe at once.
    """
    with closing(iter_shard_tasks_lazy(url, layout=layout, entry=entry, container=container)) as tasks:
        for lazy in tasks:
            yield lazy.decode()


def iter_shard_tasks_lazy(
    url: str, *, layout: TaskLayout | None = None, entry: ShardEntry | None = None, container: str | None = None
) -> Generator[LazyTask, None, None]:
    """:func:`iter_shard_tasks` with every task a :class:`LazyTask`: the shard is read, and checked (its bytes
    against ``entry``, its members, keys and task range), as it is iterated; each task's arrays are decoded (and
    checked against ``layout``) when its ``decode()`` is called. HDF5 rows come decoded already."""
    container = container or container_of(url)
    if entry is not None:
        return _iter_checked_shard(url, layout, entry, container)
    if container == "wds":
        return iter_wds_shard(url, layout)
    return _already_decoded(iter_hdf5_shard(url, layout))


def _already_decoded(tasks: Generator[Task, None, None]) -> Generator[LazyTask, None, None]:
    with closing(tasks):
        for task in tasks:
            yield LazyTask(int(task.meta["index"]), partial(_same, task))


def _same(task: Task) -> Task:
    return task


def _iter_checked_shard(
    url: str, layout: TaskLayout | None, entry: ShardEntry, container: str
) -> Generator[LazyTask, None, None]:
    f = open_checked_shard(url, entry)  # size and sha256 checked before the first task is decoded
    try:
        if container == "wds":
            yield from iter_wds_stream_lazy(f, url, layout, entry)
        elif isinstance(f, io.BufferedReader):  # a local file: h5py reads it by path (Python file objects are slower)
            yield from _already_decoded(iter_hdf5_shard(url, layout, entry, same_as=f))
        else:
            yield from _already_decoded(iter_hdf5_shard(url, layout, entry, data=f))
    finally:
        f.close()


def iter_tasks(
    source: str | Path | Sequence[str | Path],
    *,
    shuffle_shards: bool = False,
    seed: int = 0,
    allow_partial: bool = False,
) -> Iterator[Task]:
    """All tasks of a shard set, shard by shard (in task order unless ``shuffle_shards``, seeded by ``seed``).

    With a manifest (or sidecars), every shard's size and sha256 are checked before its tasks are decoded,
    every task against the config and every shard against its entry; without one, every task must match
    the layout of the first. ``allow_partial``: see :func:`resolve_shard_urls`.
    """
    urls, manifest = resolve_shard_urls(source, allow_partial=allow_partial)
    layout = manifest.layout if manifest else None
    entries: list[ShardEntry | None] = list(manifest.shards) if manifest else [None] * len(urls)
    order = list(range(len(urls)))
    if shuffle_shards:
        from lasium.seeding import (
            numpy_rng,  # imported here: lasium.seeding loads torch, which plain reading does not need
        )

        numpy_rng(seed, "shard-order").shuffle(order)
    container = manifest.container if manifest else None
    inferred: TaskLayout | None = None
    for i in order:
        for task in iter_shard_tasks(urls[i], layout=layout, entry=entries[i], container=container):
            if layout is None:  # no manifest: every task must look like the first one
                if inferred is None:
                    inferred = TaskLayout(
                        task.ways,
                        task.shots,
                        task.queries,
                        task.image_shape,
                        task.latents is not None,
                        None if task.latents is None else int(task.latents.shape[-1]),
                    )
                inferred.check_arrays(
                    task.support, task.query, task.latents, f"{urls[i]}: task {task.meta.get('index')}"
                )
            yield task
