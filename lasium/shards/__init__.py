"""The task-shard format v1 (spec: ``docs/shard-format.md``): writer, safe reader, manifest, verification.

    from lasium.shards import write_shard, write_manifest, iter_tasks
    entry = write_shard("shards/omniglot", "omniglot-ro", 0, 0, batch, "wds", header)
    write_manifest("shards/omniglot", header, [entry])
    for task in iter_tasks("shards/omniglot"):
        ...

Names are imported on first use (PEP 562), as in the other packages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lasium.lazy import lazy_exports

_EXPORTS = {
    "CONTAINERS": "lasium.shards.format",
    "WebpCodec": "lasium.shards.codecs",
    "FORMAT_NAME": "lasium.shards.format",
    "FORMAT_VERSION": "lasium.shards.format",
    "MANIFEST_NAME": "lasium.shards.format",
    "REQUIRED_CONFIG_KEYS": "lasium.shards.format",
    "Manifest": "lasium.shards.format",
    "ShardEntry": "lasium.shards.format",
    "TaskLayout": "lasium.shards.format",
    "container_of": "lasium.shards.format",
    "shard_file_name": "lasium.shards.format",
    "task_key": "lasium.shards.format",
    "build_manifest_from_sidecars": "lasium.shards.manifest",
    "read_manifest": "lasium.shards.manifest",
    "read_sidecar": "lasium.shards.manifest",
    "write_manifest": "lasium.shards.manifest",
    "decode_wds_sample": "lasium.shards.reader",
    "iter_shard_tasks": "lasium.shards.reader",
    "iter_shard_tasks_lazy": "lasium.shards.reader",
    "LazyTask": "lasium.shards.reader",
    "iter_tasks": "lasium.shards.reader",
    "resolve_shard_urls": "lasium.shards.locate",
    # remote sets: a URL read as a byte stream, riding out transient faults (docs/shard-format.md, "Remote sets")
    "RetryPolicy": "lasium.shards.remote",
    "open_remote": "lasium.shards.remote",
    "VerifyReport": "lasium.shards.verify",
    "verify_shard_set": "lasium.shards.verify",
    "validate_batch": "lasium.shards.writer",
    "write_shard": "lasium.shards.writer",
    # the encoders write_shard runs, for shard bytes without a file (benchmarks/bench_shards.py times them)
    "task_metas_json": "lasium.shards.writer",
    "hdf5_image": "lasium.shards.writer",
    "wds_chunks": "lasium.shards.wds_encode",
    # how many tasks a shard holds by the set's config (benchmarks/gen_measures.py), and forgetting which shards
    # this process has checked, so that a timed re-read checks them again (benchmarks/bench_verify.py)
    "expected_shard_tasks": "lasium.shards.format",
    "forget_checked": "lasium.shards.integrity",
    # the hand-written container pieces, timed against tarfile / gzip.GzipFile (benchmarks/bench_tar_gzip.py)
    "GzipReader": "lasium.shards.gz",
    "gzip_writer": "lasium.shards.gz",
    "iter_tar_members": "lasium.shards.tario",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from lasium.shards.codecs import WebpCodec
    from lasium.shards.format import (
        CONTAINERS,
        FORMAT_NAME,
        FORMAT_VERSION,
        MANIFEST_NAME,
        REQUIRED_CONFIG_KEYS,
        Manifest,
        ShardEntry,
        TaskLayout,
        container_of,
        expected_shard_tasks,
        shard_file_name,
        task_key,
    )
    from lasium.shards.gz import GzipReader, gzip_writer
    from lasium.shards.integrity import forget_checked
    from lasium.shards.locate import resolve_shard_urls
    from lasium.shards.manifest import build_manifest_from_sidecars, read_manifest, read_sidecar, write_manifest
    from lasium.shards.reader import LazyTask, decode_wds_sample, iter_shard_tasks, iter_shard_tasks_lazy, iter_tasks
    from lasium.shards.remote import RetryPolicy, open_remote
    from lasium.shards.tario import iter_tar_members
    from lasium.shards.verify import VerifyReport, verify_shard_set
    from lasium.shards.wds_encode import wds_chunks
    from lasium.shards.writer import hdf5_image, task_metas_json, validate_batch, write_shard
