"""The fuzz campaign's cases (``tests/fuzz_sets.py``): the valid sets every case starts from, and the
Hypothesis strategies that draw a case (which set, one to three mutations, where it is read from, which options).

A case is plain JSON (``--replay`` takes it back): a mutation is a dict whose ``op`` names its function in
``fuzz_mutations.MUTATORS`` and whose other keys are its parameters. Values that look rare are listed last in
``sampled_from`` (Hypothesis favours the first), and positions are large integers taken modulo a length, so that
damage lands anywhere in a file, not only at its start. ``HOSTILE`` holds the planted names and commands.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

MARK = "PWNED"  # every planted command creates a file whose name contains this
SET_NAME = "fz"
WAYS, SHOTS, QUERIES, SIZE, LATENT = 5, 1, 1, 16, 3
SHARDS, PER_SHARD = 3, 2
BASES = ("tar", "gz", "h5", "lat")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Hostile strings planted in names, JSON fields, attributes and tar headers. "{MARK}" becomes an absolute path.
HOSTILE = [  # fmt: skip
    f"pipe:touch {MARK}",
    "pipe:touch {MARK}",
    f"pipe:touch {MARK};cat fz-000000.tar",
    "pipe:sh -c 'touch {MARK}' fz-000000.tar",
    f"|touch {MARK}",
    f"$(touch {MARK})fz-000000.tar",
    f"`touch {MARK}`-000000.tar",
    f"fz-000000.tar;touch {MARK}",
    "../fz-000000.tar",
    "../../outside/secret",
    "/etc/passwd",
    "~/fz-000000.tar",
    "file:///etc/passwd",
    "http://127.0.0.1:9/fz-000000.tar",
    "s3://bucket/fz-000000.tar",
    "fz-000000.tar\x00.txt",
    "fz-000000.tar\n",
    "fz-000000.tar\x1b[2J",
    "ｐｉｐｅ:touch PWNED",
    "fz-٠٠٠٠٠٠.tar",
    "fz-000000.h5",
    "fz-000009.tar",
    "other-000000.tar",
    "",
    "fz",
    "fz-000001.tar",
    "fz-000000.tar.gz",
]


# ------------------------------------------------------------------------------------------------ base sets


@dataclass
class BaseSet:
    """A valid set every case of its kind starts from, with what it holds."""

    key: str
    folder: Path
    tasks: dict[int, Any]  # index -> lasium.tasks.Task
    files: dict[str, bytes]  # file name -> bytes, as written


def _batch(first: int, count: int, latents: bool) -> Any:
    from lasium.tasks import TaskBatch

    rng = np.random.default_rng(first)
    shape = (count, WAYS)
    support = rng.integers(0, 256, (*shape, SHOTS, SIZE, SIZE, 1), dtype=np.uint8)
    query = rng.integers(0, 256, (*shape, QUERIES, SIZE, SIZE, 1), dtype=np.uint8)
    lat = rng.standard_normal((*shape, SHOTS + QUERIES, LATENT)).astype(np.float16) if latents else None
    return TaskBatch(support, query, lat, [{"strategy": "ro", "anchors": [1, 2]} for _ in range(count)])


def build_base(key: str, folder: Path) -> BaseSet:
    from lasium.shards import iter_tasks, write_manifest, write_shard

    container = "hdf5" if key == "h5" else "wds"
    compression = "gzip" if key == "gz" else "auto"
    latents = key == "lat"
    config = {"ways": WAYS, "shots": SHOTS, "queries": QUERIES, "image_shape": [SIZE, SIZE, 1], "seed": 0}
    config |= {"strategy": "ro", "tasks_per_shard": PER_SHARD, "num_tasks": SHARDS * PER_SHARD}
    config |= {"save_latents": latents, "latent_dim": LATENT}
    header = {"config": config, "generator": {"kind": "gan", "name": "fuzz", "latent_dim": LATENT}, "source": None}
    entries = []
    for s in range(SHARDS):
        batch = _batch(s * PER_SHARD, PER_SHARD, latents)
        entries.append(
            write_shard(folder, SET_NAME, s, s * PER_SHARD, batch, container, header, compression=compression)
        )
    write_manifest(folder, header, entries)
    tasks = {t.meta["index"]: t for t in iter_tasks(folder)}
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    return BaseSet(key, folder, tasks, files)


# ------------------------------------------------------------------------------------------------ strategies

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2, 3, 6, 7, 10**9, 10**12, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(HOSTILE),
    st.sampled_from(["wds", "hdf5", "lasium-task-shards", "fz", "0" * 64, "f" * 64, "gzip", "none"]),
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=8,
)


def _paths(text: str) -> list[list[str | int]]:
    """``"a.b.0 c"`` → ``[["a", "b", 0], ["c"]]``: JSON paths into a manifest or sidecar."""
    return [[int(k) if k.isdigit() else k for k in path.split(".")] for path in text.split()]


MANIFEST_PATHS = _paths(
    "format format_version tool_version container name config config.ways config.shots config.queries "
    "config.image_shape config.image_shape.0 config.image_shape.2 config.tasks_per_shard config.num_tasks "
    "config.save_latents config.latent_dim config.compression config.strategy generator generator.name "
    "generator.latent_dim source shards num_tasks shards.0 shards.1.file shards.0.file shards.2.first_task "
    "shards.1.num_tasks shards.1.bytes shards.0.sha256 shards.2.sha256"
)
SIDECAR_PATHS = _paths("shard shard.file shard.first_task shard.num_tasks shard.bytes shard.sha256") + [
    p for p in MANIFEST_PATHS if p[0] not in ("shards", "num_tasks")
]

shard_index = st.integers(0, SHARDS - 1)
position = st.integers(0, 2**31)  # taken modulo a length: anywhere in a file, not only near its start
small_bytes = st.binary(min_size=1, max_size=16)
TYPE_FLAGS = "0 1 2 3 5 6 7 L K x g S V".split()
OCTAL_FIELDS = ["77777777777", "0", "-1", "99999999999", "\x80\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00", "1e9"]
MEMBER_NAMES = (
    "task-000000000.support.npy task-000000000.pyd task-000000000.pickle task-000000000.pth task-000000000.npz "
    "task-000000001.support.npy task-000000000.meta.json /etc/passwd ../task-000000000.support.npy task-000000000 "
    "task-00000000x.support.npy ustar"
).split()
tar_values = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(TYPE_FLAGS),
    st.sampled_from(OCTAL_FIELDS),
    st.text(max_size=20),
    st.sampled_from(MEMBER_NAMES),
)
NPY_DESCRS = "|u1 <u1 |O <f8 <u2 |i1 <f2 |b1 |V4 <c16 S3 U2 [('a','<u1')] object ?".split()
NPY_SHAPES = [(5, 1, 16, 16, 1), (1, 5, 16, 16, 1), (5, 1, 16, 16), (), (0,), (5, 1, 16, 16, 1, 1), (-1, 1, 16, 16, 1)]
npy_values = st.one_of(
    st.sampled_from(NPY_DESCRS),
    st.lists(st.integers(-3, 2**40), max_size=7).map(tuple),
    st.sampled_from(NPY_SHAPES),
    st.booleans(),
    st.integers(0, 2**32),
    st.text(max_size=30),
    st.sampled_from(HOSTILE),
)
META_TEXTS = [
    *(b'{"index":%s}' % v for v in (b"0", b"5", b"-1", b'"0"', b"1e400", b'0,"index":1', b"1" * 5000)),
    *(b"[1]", b"null", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b"", b'{"index":0}\x00', b"NaN"),
]
meta_values = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode().hex()),
    st.sampled_from(META_TEXTS).map(bytes.hex),
)
TAR_FIELDS = "name size type mode linkname prefix checksum magic uid mtime".split()
TAR_MEMBER_ACTIONS = "drop dup swap rename add move_last pax gnu_long link".split()
NPY_FIELDS = "descr shape fortran version hlen magic payload garbage_header extra_data".split()
GZIP_ACTIONS = "flags crc isize concat trailing padding relevel cut_deflate extra name method plain".split()
HDF5_ACTIONS = (
    "attr extra_dataset group softlink extlink virtual external dtype meta resize drop pixel attr_type compound "
    "scalar chunks"
).split()
FS_ACTIONS = "delete empty folder symlink_out symlink_other fifo swap stray hostile_file tmp_file hardlink_out".split()
RAW_JSON_ACTIONS = "truncate nonutf8 deep huge nan dupkeys bom trailing empty list utf16 control".split()


def mutation(op: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    """A mutation record: ``{"op": op, <field>: <drawn value>, ...}``."""
    return st.fixed_dictionaries({"op": st.just(op), **fields})


def shard_mutations(layer: st.SearchStrategy[str]) -> list[st.SearchStrategy[dict]]:
    """Mutations of a WebDataset shard (``layer``: raw bytes, or the tar inside a ``.tar.gz``)."""
    member, on = st.integers(0, 40), {"shard": shard_index, "layer": layer}
    return [
        mutation(
            "tar_header",
            **on,
            member=member,
            field=st.sampled_from(TAR_FIELDS),
            value=tar_values,
            fix_checksum=st.booleans(),
        ),  # fmt: skip
        mutation(
            "tar_member",
            **on,
            action=st.sampled_from(TAR_MEMBER_ACTIONS),
            member=member,
            other=member,
            name=tar_values,
            data=st.binary(max_size=64).map(bytes.hex),
        ),  # fmt: skip
        mutation("npy", **on, member=member, field=st.sampled_from(NPY_FIELDS), value=npy_values),
        mutation("meta", **on, task=st.integers(0, 1), value=meta_values),
    ]


def pixel_mutation(layer: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    """One image byte changed inside a valid container: the damage only a checksum can see."""
    return mutation("pixel", shard=shard_index, layer=layer, member=st.integers(0, 40),
                    offset=st.integers(0, 2**16), xor=st.integers(1, 255))  # fmt: skip


def byte_mutation(layer: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    modes = st.sampled_from("flip set insert delete truncate append copy".split())
    return mutation("bytes", shard=shard_index, layer=layer, mode=modes, pos=position, n=st.integers(1, 600),
                    data=small_bytes.map(bytes.hex))  # fmt: skip


def json_mutation(which: str) -> st.SearchStrategy[dict]:
    paths = st.sampled_from(MANIFEST_PATHS if which == "manifest" else SIDECAR_PATHS)
    return mutation("json", file=st.just(which), index=shard_index, path=paths,
                    action=st.sampled_from(["set", "set", "set", "delete", "add"]), value=json_values)  # fmt: skip


gzip_mutation = mutation("gzip", shard=shard_index, action=st.sampled_from(GZIP_ACTIONS), value=st.integers(0, 2**32),
                         data=small_bytes.map(bytes.hex))  # fmt: skip
hdf5_mutation = mutation(
    "hdf5",
    shard=shard_index,
    action=st.sampled_from(HDF5_ACTIONS),
    dataset=st.sampled_from(["support", "query", "meta", "latents"]),
    key=st.sampled_from(["lasium_shard", "lasium_header", "other"]),
    path=st.sampled_from(["first_task", "num_tasks", "format_version", "file", None]),
    value=json_values,
    n=st.integers(0, 5),
)
fs_mutation = mutation("fs", target=st.sampled_from(["shard", "sidecar", "manifest"]), index=shard_index,
                       action=st.sampled_from(FS_ACTIONS), name=st.sampled_from(HOSTILE))  # fmt: skip
raw_json_mutation = mutation("json_raw", file=st.sampled_from(["manifest", "sidecar"]), index=shard_index,
                             action=st.sampled_from(RAW_JSON_ACTIONS), pos=position)  # fmt: skip


def mutations_for(base: str) -> st.SearchStrategy[dict]:
    layer = st.sampled_from(["tar", "raw"]) if base == "gz" else st.just("raw")
    options = [
        byte_mutation(layer),
        json_mutation("manifest"),
        json_mutation("sidecar"),
        raw_json_mutation,
        fs_mutation,
    ]
    if base == "h5":
        options += [hdf5_mutation] * 4
    else:
        options += shard_mutations(layer) * 2 + [pixel_mutation(st.just("tar") if base == "gz" else layer)] * 3
        options += [gzip_mutation]
    return st.one_of(*options)


def case_for(base: str) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "base": st.just(base),
            "mutations": st.lists(mutations_for(base), min_size=1, max_size=3),
            # rare options last: Hypothesis favours the first element of sampled_from
            "reseal": st.sampled_from([False, False, False, True]),
            "drop_manifest": st.sampled_from([False] * 5 + [True]),
            "where": st.sampled_from(["outside", "inside", "manifest", "http"]),
            "skip_corrupt": st.booleans(),
            "allow_partial": st.sampled_from([False, False, False, True]),
            "train_cli": st.sampled_from([False] * 9 + [True]),
        }
    )


cases = st.sampled_from(BASES).flatmap(case_for)
