"""Writing one shard: validate the batch, encode it (WebDataset tar or HDF5), write atomically, sidecar.

This is the hot path of ``lasium-gen`` (a pool of writer processes behind a GPU producing tens of
thousands of tasks per second). The tar encoder (:mod:`lasium.shards.wds_encode`) works on whole
chunks of the :class:`TaskBatch` with numpy, and the sha256 is computed on the bytes as they are
written, so the file is never read back. The HDF5 encoder builds the file in memory (HDF5 core
driver) so it can be hashed and written atomically like a tar.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from lasium.errors import ShardError
from lasium.shards.atomic import atomic_write, atomic_write_bytes
from lasium.shards.codecs import get_image_codec
from lasium.shards.format import (
    DEFAULT_COMPRESSION,
    DEFAULT_IMAGE_CODEC,
    FORMAT_NAME,
    FORMAT_VERSION,
    HDF5_COMPRESSIONS,
    ShardEntry,
    TaskLayout,
    canonical_json,
    check_compression,
    check_container,
    check_header,
    check_name,
    expected_shard_tasks,
    shard_file_name,
)
from lasium.shards.gz import DEFAULT_LEVEL, HDF5_GZIP_LEVEL, gzip_writer
from lasium.shards.manifest import sidecar_path, write_sidecar
from lasium.shards.wds_encode import wds_chunks, wds_image_chunks
from lasium.tasks import TaskBatch


def task_metas_json(batch: TaskBatch, first_task: int, config: dict[str, Any]) -> list[bytes]:
    """The ``meta.json`` bytes of each task: the producer's dict plus ``index`` (and ``strategy`` from the config
    when the producer did not set one), as canonical JSON."""
    n = len(batch)
    metas = batch.metas or [{}] * n
    strategy = config.get("strategy")
    out = []
    for i, meta in enumerate(metas):
        index = first_task + i
        if "index" in meta and meta["index"] != index:
            raise ShardError(
                f"task meta index {meta['index']} does not match its "
                f"position (task {index}); leave 'index' to the writer"
            )
        d = dict(meta)
        d["index"] = index
        if strategy is not None and "strategy" not in d:
            d["strategy"] = strategy
        try:
            out.append(canonical_json(d).encode())
        except (TypeError, ValueError) as exc:
            raise ShardError(f"meta of task {index} is not JSON-serializable: {exc}") from None
    return out


def validate_batch(batch: TaskBatch, header: dict[str, Any], shard_index: int, first_task: int) -> None:
    """Check the batch against the set's config: task range of the shard, shapes and dtypes, metas."""
    config = header["config"]
    want_first, want_count = expected_shard_tasks(config, shard_index)
    if want_count == 0:
        raise ShardError(
            f"shard {shard_index} lies beyond the set's {config['num_tasks']} tasks "
            f"({config['tasks_per_shard']} per shard); there is nothing to write"
        )
    if first_task != want_first or len(batch) != want_count:
        raise ShardError(
            f"shard {shard_index} must hold tasks {want_first}..{want_first + want_count - 1} "
            f"(tasks_per_shard={config['tasks_per_shard']}, num_tasks={config['num_tasks']}); "
            f"got {len(batch)} tasks from {first_task}"
        )
    if batch.metas and len(batch.metas) != len(batch):
        raise ShardError(f"batch has {len(batch.metas)} metas for {len(batch)} tasks")
    TaskLayout.from_header(header).check_arrays(
        batch.support, batch.query, batch.latents, f"batch for shard {shard_index}", (len(batch),)
    )


def hdf5_image(
    batch: TaskBatch, metas_json: list[bytes], attrs: dict[str, str], compression: str = "gzip", level: int = 1
) -> bytes:
    """The shard as an HDF5 file image (bytes), built in memory.

    Datasets ``support``/``query``/``latents`` are chunked one task per chunk; ``meta`` holds the
    meta.json strings. ``track_times=False`` and fixed format bounds keep the bytes reproducible.
    """
    import h5py

    if compression not in HDF5_COMPRESSIONS:
        raise ShardError(f"unknown HDF5 compression {compression!r}: use {', '.join(HDF5_COMPRESSIONS)}")
    kw: dict[str, Any] = {"track_times": False}
    if compression != "none":
        kw["compression"] = compression
        if compression == "gzip":
            kw["compression_opts"] = int(level)
    # The name only labels the in-memory file; it is not stored in the image.
    with h5py.File(
        f"lasium-shard-{id(batch)}-{next(_image_counter)}",
        "w",
        driver="core",
        backing_store=False,
        libver=("earliest", "v110"),
    ) as f:
        for key, arr in (("support", batch.support), ("query", batch.query), ("latents", batch.latents)):
            if arr is not None:
                arr = np.ascontiguousarray(arr)
                f.create_dataset(key, data=arr, chunks=(1,) + arr.shape[1:], **kw)
        f.create_dataset(
            "meta", data=[m.decode() for m in metas_json], dtype=h5py.string_dtype("utf-8"), track_times=False
        )
        for key, value in attrs.items():
            f.attrs[key] = value
        f.flush()
        return f.id.get_file_image()


_image_counter = itertools.count()


def write_shard(
    out_dir: str | Path,
    name: str,
    shard_index: int,
    first_task: int,
    batch: TaskBatch,
    container: str,
    header: dict[str, Any],
    *,
    compression: str | None = "auto",
    compression_level: int | None = None,
) -> ShardEntry:
    """Write shard ``shard_index`` of set ``name`` into ``out_dir`` and its sidecar; return its manifest entry.

    The shard is written to a hidden temporary name, fsynced and renamed, so an exception or a kill
    never leaves a partial file under the final name; then the sidecar ``<file>.json`` records the
    header and entry. A stale sidecar of an older version of the shard is removed first.
    ``compression``: WebDataset ``gzip`` writes ``<name>-NNNNNN.tar.gz`` (the tar gzipped, reproducible
    header), ``none`` a plain ``.tar``; HDF5 ``gzip``, ``lzf`` or ``none`` filters. ``auto`` = the format's
    default (:data:`lasium.shards.format.DEFAULT_COMPRESSION`: plain tar, HDF5 gzip). ``compression_level`` is
    the gzip level (None: 6 for ``.tar.gz``, the level that meets 35% of raw bytes at 28×28×1 (docs/shard-format.md);
    1 for the HDF5 filter, unchanged).

    The set's config says how tasks store their images (``image_codec``: ``npy`` when absent, or an image codec
    of :mod:`lasium.shards.codecs`, WebDataset only).
    """
    check_name(name)
    check_container(container)
    if compression == "auto":
        compression = DEFAULT_COMPRESSION[container]
    compression = check_compression(compression, container)
    header = check_header(header)
    validate_batch(batch, header, shard_index, first_task)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    file = shard_file_name(name, shard_index, container, compression)
    path = out_dir / file
    codec = get_image_codec(header["config"].get("image_codec", DEFAULT_IMAGE_CODEC))
    if codec is not None and container != "wds":
        raise ShardError(f"image codec {codec.name} applies to WebDataset shards; HDF5 shards hold raw arrays")
    if codec is not None and batch.support.shape[-1] not in (1, 3):
        raise ShardError(
            f"image codec {codec.name} stores grey (C=1) or RGB (C=3) images, not C={batch.support.shape[-1]}; "
            "use --image-codec npy"
        )
    metas_json = task_metas_json(batch, first_task, header["config"])
    sidecar_path(path).unlink(missing_ok=True)
    if container == "wds":
        level = DEFAULT_LEVEL if compression_level is None else compression_level

        def fill(out: Any) -> None:
            sink = gzip_writer(out, level) if compression == "gzip" else out
            chunks = (
                wds_chunks(batch, first_task, metas_json)
                if codec is None
                else wds_image_chunks(batch, first_task, metas_json, codec)
            )
            for chunk in chunks:
                sink.write(chunk)
            if sink is not out:
                sink.close()

        size, sha = atomic_write(path, fill)
    else:
        attrs = {
            "lasium_shard": canonical_json(
                {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "file": file,
                    "first_task": first_task,
                    "num_tasks": len(batch),
                }
            ),
            "lasium_header": canonical_json(header),
        }
        size, sha = atomic_write_bytes(
            path,
            hdf5_image(
                batch,
                metas_json,
                attrs,
                compression,
                HDF5_GZIP_LEVEL if compression_level is None else compression_level,
            ),
        )
    entry = ShardEntry(file, first_task, len(batch), size, sha)
    write_sidecar(path, container, name, header, entry)
    return entry
