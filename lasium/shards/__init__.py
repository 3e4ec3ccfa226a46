"""The task-shard format v1 (spec: ``shards/README.md``): writer, safe reader, manifest, verification.

    from lasium.shards import write_shard, write_manifest, iter_tasks
    entry = write_shard("shards/omniglot", "omniglot-ro", 0, 0, batch, "wds", header)
    write_manifest("shards/omniglot", header, [entry])
    for task in iter_tasks("shards/omniglot"):
        ...
"""

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
    shard_file_name,
    task_key,
)
from lasium.shards.manifest import build_manifest_from_sidecars, read_manifest, read_sidecar, write_manifest
from lasium.shards.reader import decode_wds_sample, iter_shard_tasks, iter_tasks, resolve_shard_urls
from lasium.shards.verify import VerifyReport, verify_shard_set
from lasium.shards.writer import validate_batch, write_shard

__all__ = [
    "CONTAINERS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "REQUIRED_CONFIG_KEYS",
    "Manifest",
    "ShardEntry",
    "TaskLayout",
    "VerifyReport",
    "build_manifest_from_sidecars",
    "container_of",
    "decode_wds_sample",
    "iter_shard_tasks",
    "iter_tasks",
    "read_manifest",
    "read_sidecar",
    "resolve_shard_urls",
    "shard_file_name",
    "task_key",
    "validate_batch",
    "verify_shard_set",
    "write_manifest",
    "write_shard",
]
