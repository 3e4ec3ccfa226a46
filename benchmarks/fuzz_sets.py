"""A fuzz campaign over shard sets (Hypothesis): mutate valid sets, feed them to every command that reads one.

Each case copies a small valid set (plain ``.tar``, ``.tar.gz``, HDF5, or ``.tar`` with latents; three shards of
two 5-way 1+1-shot 16×16 tasks), applies one to three mutations drawn by Hypothesis, and runs on it:

* the trainer's task stream in-process (``open_mixture`` → ``TaskStream``, with or without ``skip_corrupt``),
* ``lasium-shards verify``, ``inspect``, ``inspect --json``, ``preview`` and ``index``,
* for a sample of cases, the real ``lasium-train`` command (2 steps of ProtoNets on the CPU),

from outside the set's folder, from inside it (``.``, as the set's card says), through its ``manifest.json``, or
over HTTP (a server on 127.0.0.1). Mutations: raw bytes (flip, set, insert, delete, truncate, append, copy) of
shards, gzip streams and the tar inside them; tar headers (name, size, type, mode, link name, prefix, checksum,
magic) and members (drop, repeat, swap, rename, add); ``.npy`` headers (dtype, shape, order, version, length,
magic, a pickle payload); ``meta.json``; HDF5 attributes, datasets, links, groups, dtypes and storage; JSON fields
of manifests and sidecars (any JSON value, hostile names, deletions, raw damage: truncation, non-UTF-8, deep
nesting, huge numbers); files deleted, emptied, swapped, turned into folders, FIFOs or links out of the set. Some
cases *reseal* the set afterwards (sizes and sha256 in the manifest and sidecars rewritten to match the damaged
files), so the decoders meet damage the checksums vouch for. ``pipe:touch MARK`` style payloads are planted
among the values.

Invariants, checked for every command of every case:

1. no traceback: every command ends with exit 0, 1 (``verify`` only: bad shards) or 2, and no exception other
   than the project's one-line errors escapes the in-process stream;
2. each failure is one line: exit 2 prints exactly one ``error:`` line (besides ``note:``/``warning:`` lines),
   ``verify``'s exit 1 prints one ``bad:`` line per problem; no output carries control characters from the set;
3. no command executed: no file named like the planted mark appears anywhere;
4. nothing written outside the output folder: the case's whole tree is snapshotted around each command
   (``preview`` may write its PNG, ``lasium-train`` its run folder, ``index`` the set's ``manifest.json``);
5. no task from changed bytes reaches the learner: every task the stream yields is the original task of its
   index, byte for byte, unless the case resealed the set (then it must have the set's layout), and a preview
   that succeeds draws exactly the original tasks it names; ``verify`` says ok only when every listed shard
   has its recorded size and sha256;
6. no hang: a case ends within ``--timeout`` seconds (each case runs in a forked child process, so a crash or a
   hang is caught and reported as a broken invariant too).

The test suite runs a short derandomized campaign (``tests/test_fuzz_sets.py``); the long run is this script::

    nice -n 10 python benchmarks/fuzz_sets.py --cases 10000 --seed 0
    python benchmarks/fuzz_sets.py --replay failures/case-17.json      # rerun one reported case

It prints how many cases it tried and how many broke an invariant, with a reproducer (the case as JSON, which
``--replay`` takes) for each. This is a development tool, kept in ``benchmarks/`` rather than the package:
Hypothesis is a test dependency, and the campaign drives the installed commands as a user would.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

MARK = "PWNED"  # every planted command creates a file whose name contains this
SET_NAME = "fz"
WAYS, SHOTS, QUERIES, SIZE, LATENT = 5, 1, 1, 16, 3
SHARDS, PER_SHARD = 3, 2
BASES = ("tar", "gz", "h5", "lat")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Hostile strings planted in names, JSON fields, attributes and tar headers. "{MARK}" becomes an absolute path.
HOSTILE = [
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
    config = {
        "ways": WAYS,
        "shots": SHOTS,
        "queries": QUERIES,
        "image_shape": [SIZE, SIZE, 1],
        "seed": 0,
        "tasks_per_shard": PER_SHARD,
        "num_tasks": SHARDS * PER_SHARD,
        "save_latents": latents,
        "strategy": "ro",
        "latent_dim": LATENT,
    }
    header = {"config": config, "generator": {"kind": "gan", "name": "fuzz", "latent_dim": LATENT}, "source": None}
    entries = [
        write_shard(
            folder,
            SET_NAME,
            s,
            s * PER_SHARD,
            _batch(s * PER_SHARD, PER_SHARD, latents),
            container,
            header,
            compression=compression,
        )
        for s in range(SHARDS)
    ]
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
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)

MANIFEST_PATHS = [
    ["format"],
    ["format_version"],
    ["tool_version"],
    ["container"],
    ["name"],
    ["config"],
    ["config", "ways"],
    ["config", "shots"],
    ["config", "queries"],
    ["config", "image_shape"],
    ["config", "image_shape", 0],
    ["config", "image_shape", 2],
    ["config", "tasks_per_shard"],
    ["config", "num_tasks"],
    ["config", "save_latents"],
    ["config", "latent_dim"],
    ["config", "compression"],
    ["config", "strategy"],
    ["generator"],
    ["generator", "name"],
    ["generator", "latent_dim"],
    ["source"],
    ["shards"],
    ["num_tasks"],
    ["shards", 0],
    ["shards", 1, "file"],
    ["shards", 0, "file"],
    ["shards", 2, "first_task"],
    ["shards", 1, "num_tasks"],
    ["shards", 1, "bytes"],
    ["shards", 0, "sha256"],
    ["shards", 2, "sha256"],
]
SIDECAR_PATHS = [
    ["shard"],
    ["shard", "file"],
    ["shard", "first_task"],
    ["shard", "num_tasks"],
    ["shard", "bytes"],
    ["shard", "sha256"],
] + [p for p in MANIFEST_PATHS if p[0] not in ("shards", "num_tasks")]

shard_index = st.integers(0, SHARDS - 1)
position = st.integers(0, 2**31)
small_bytes = st.binary(min_size=1, max_size=16)


def byte_mutation(layer: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "op": st.just("bytes"),
            "shard": shard_index,
            "layer": layer,
            "mode": st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append", "copy"]),
            "pos": position,
            "n": st.integers(1, 600),
            "data": small_bytes.map(bytes.hex),
        }
    )


TAR_FIELDS = ["name", "size", "type", "mode", "linkname", "prefix", "checksum", "magic", "uid", "mtime"]
tar_values = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(["0", "1", "2", "3", "5", "6", "7", "L", "K", "x", "g", "S", "V"]),  # type flags
    st.sampled_from(
        ["77777777777", "0", "-1", "99999999999", "\x80\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00", "1e9"]
    ),
    st.text(max_size=20),
    st.sampled_from(
        [
            "task-000000000.support.npy",
            "task-000000000.pyd",
            "task-000000000.pickle",
            "task-000000000.pth",
            "task-000000000.npz",
            "task-000000001.support.npy",
            "task-000000000.meta.json",
            "/etc/passwd",
            "../task-000000000.support.npy",
            "task-000000000",
            "task-00000000x.support.npy",
            "ustar",
            "ustar  ",
        ]
    ),
)


def tar_header_mutation(layer: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "op": st.just("tar_header"),
            "shard": shard_index,
            "layer": layer,
            "member": st.integers(0, 40),
            "field": st.sampled_from(TAR_FIELDS),
            "value": tar_values,
            "fix_checksum": st.booleans(),
        }
    )


def tar_member_mutation(layer: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "op": st.just("tar_member"),
            "shard": shard_index,
            "layer": layer,
            "action": st.sampled_from(["drop", "dup", "swap", "rename", "add", "move_last", "pax", "gnu_long", "link"]),
            "member": st.integers(0, 40),
            "other": st.integers(0, 40),
            "name": tar_values,
            "data": st.binary(max_size=64).map(bytes.hex),
        }
    )


NPY_FIELDS = ["descr", "shape", "fortran", "version", "hlen", "magic", "payload", "garbage_header", "extra_data"]
npy_values = st.one_of(
    st.sampled_from(
        [
            "|u1",
            "<u1",
            "|O",
            "<f8",
            "<u2",
            "|i1",
            "<f2",
            "|b1",
            "|V4",
            "<c16",
            "S3",
            "U2",
            "[('a','<u1')]",
            "object",
            "?",
        ]
    ),
    st.lists(st.integers(-3, 2**40), max_size=7).map(tuple),
    st.sampled_from(
        [(5, 1, 16, 16, 1), (1, 5, 16, 16, 1), (5, 1, 16, 16), (), (0,), (5, 1, 16, 16, 1, 1), (-1, 1, 16, 16, 1)]
    ),
    st.booleans(),
    st.integers(0, 2**32),
    st.text(max_size=30),
    st.sampled_from(HOSTILE),
)


def npy_mutation(layer: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "op": st.just("npy"),
            "shard": shard_index,
            "layer": layer,
            "member": st.integers(0, 40),
            "field": st.sampled_from(NPY_FIELDS),
            "value": npy_values,
        }
    )


meta_values = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode().hex()),
    st.sampled_from(
        [
            b'{"index":0}',
            b'{"index":5}',
            b'{"index":-1}',
            b'{"index":"0"}',
            b'{"index":1e400}',
            b"[1]",
            b"null",
            b"\xff\xfe",
            b'{"index":0,"index":1}',
            b"[" * 5000 + b"]" * 5000,
            b'{"index":' + b"1" * 5000 + b"}",
            b"",
            b'{"index":0}\x00',
            b"NaN",
        ]
    ).map(bytes.hex),
)


def meta_mutation(layer: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"op": st.just("meta"), "shard": shard_index, "layer": layer, "task": st.integers(0, 1), "value": meta_values}
    )


GZIP_ACTIONS = [
    "flags",
    "crc",
    "isize",
    "concat",
    "trailing",
    "padding",
    "relevel",
    "cut_deflate",
    "extra",
    "name",
    "method",
    "plain",
]
gzip_mutation = st.fixed_dictionaries(
    {
        "op": st.just("gzip"),
        "shard": shard_index,
        "action": st.sampled_from(GZIP_ACTIONS),
        "value": st.integers(0, 2**32),
        "data": small_bytes.map(bytes.hex),
    }
)

HDF5_ACTIONS = [
    "attr",
    "extra_dataset",
    "group",
    "softlink",
    "extlink",
    "virtual",
    "external",
    "dtype",
    "meta",
    "resize",
    "drop",
    "pixel",
    "attr_type",
    "compound",
    "scalar",
    "chunks",
]
hdf5_mutation = st.fixed_dictionaries(
    {
        "op": st.just("hdf5"),
        "shard": shard_index,
        "action": st.sampled_from(HDF5_ACTIONS),
        "dataset": st.sampled_from(["support", "query", "meta", "latents"]),
        "key": st.sampled_from(["lasium_shard", "lasium_header", "other"]),
        "path": st.sampled_from(["first_task", "num_tasks", "format_version", "file", None]),
        "value": json_values,
        "n": st.integers(0, 5),
    }
)

FS_ACTIONS = [
    "delete",
    "empty",
    "folder",
    "symlink_out",
    "symlink_other",
    "fifo",
    "swap",
    "stray",
    "hostile_file",
    "tmp_file",
    "hardlink_out",
]
fs_mutation = st.fixed_dictionaries(
    {
        "op": st.just("fs"),
        "target": st.sampled_from(["shard", "sidecar", "manifest"]),
        "index": shard_index,
        "action": st.sampled_from(FS_ACTIONS),
        "name": st.sampled_from(HOSTILE),
    }
)


def json_mutation(which: str) -> st.SearchStrategy[dict]:
    paths = MANIFEST_PATHS if which == "manifest" else SIDECAR_PATHS
    return st.fixed_dictionaries(
        {
            "op": st.just("json"),
            "file": st.just(which),
            "index": shard_index,
            "path": st.sampled_from(paths),
            "action": st.sampled_from(["set", "set", "set", "delete", "add"]),
            "value": json_values,
        }
    )


RAW_JSON_ACTIONS = [
    "truncate",
    "nonutf8",
    "deep",
    "huge",
    "nan",
    "dupkeys",
    "bom",
    "trailing",
    "empty",
    "list",
    "utf16",
    "control",
]
raw_json_mutation = st.fixed_dictionaries(
    {
        "op": st.just("json_raw"),
        "file": st.sampled_from(["manifest", "sidecar"]),
        "index": shard_index,
        "action": st.sampled_from(RAW_JSON_ACTIONS),
        "pos": position,
    }
)


def pixel_mutation(layer: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    """One image byte changed inside a valid container: the damage only a checksum can see."""
    return st.fixed_dictionaries(
        {
            "op": st.just("pixel"),
            "shard": shard_index,
            "layer": layer,
            "member": st.integers(0, 40),
            "offset": st.integers(0, 2**16),
            "xor": st.integers(1, 255),
        }
    )


def mutations_for(base: str) -> st.SearchStrategy[dict]:
    wds = base != "h5"
    layer = st.sampled_from(["tar", "raw"]) if base == "gz" else st.just("raw")
    options = [
        byte_mutation(layer),
        json_mutation("manifest"),
        json_mutation("sidecar"),
        raw_json_mutation,
        fs_mutation,
    ]
    if wds:
        options += [
            tar_header_mutation(layer),
            tar_member_mutation(layer),
            npy_mutation(layer),
            meta_mutation(layer),
        ] * 2
        options += [pixel_mutation(st.just("tar") if base == "gz" else layer)] * 3
        options += [gzip_mutation]
    else:
        options += [hdf5_mutation] * 4
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


# ------------------------------------------------------------------------------------------------ tar and npy helpers


@dataclass
class Member:
    header: bytearray
    data: bytes

    @property
    def name(self) -> str:
        return bytes(self.header[:100]).split(b"\0", 1)[0].decode("latin-1")


def _octal(value: int, width: int) -> bytes:
    return (b"%0*o" % (width - 1, value))[-(width - 1) :] + b"\0"


def _checksum(h: bytearray) -> None:
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % (sum(h) & 0o777777)


def _header(name: bytes, size: int, typeflag: bytes = b"0") -> bytearray:
    h = bytearray(512)
    h[: min(100, len(name))] = name[:100]
    h[100:108] = _octal(0o644, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(0, 12)
    h[156:157] = typeflag[:1] or b"0"
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    _checksum(h)
    return h


def parse_tar(data: bytes) -> list[Member] | None:
    """The members of a tar, leniently (None when it cannot be split)."""
    members, pos = [], 0
    while pos + 512 <= len(data):
        h = bytearray(data[pos : pos + 512])
        if h == bytes(512):
            return members
        try:
            size = int(bytes(h[124:136]).split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError:
            return None
        if size < 0 or pos + 512 + size > len(data):
            return None
        members.append(Member(h, data[pos + 512 : pos + 512 + size]))
        pos += 512 + size + (-size % 512)
    return None


def build_tar(members: list[Member], fix_sizes: bool = True) -> bytes:
    out = bytearray()
    for m in members:
        h = bytearray(m.header)
        if fix_sizes:
            h[124:136] = _octal(len(m.data), 12)
            _checksum(h)
        out += h + m.data + bytes(-len(m.data) % 512)
    out += bytes(1024)
    out += bytes(-len(out) % 10240)
    return bytes(out)


def npy_parts(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """(header dict, array bytes) of an npy member, else None."""
    if data[:6] != b"\x93NUMPY" or len(data) < 10:
        return None
    hlen = int.from_bytes(data[8:10], "little") if data[6] == 1 else int.from_bytes(data[8:12], "little")
    start = 10 if data[6] == 1 else 12
    try:
        import ast

        header = ast.literal_eval(data[start : start + hlen].decode("latin-1"))
    except (ValueError, SyntaxError):
        return None
    return (header, data[start + hlen :]) if isinstance(header, dict) else None


def npy_bytes(
    header: Any, body: bytes, version: int = 1, hlen: int | None = None, magic: bytes = b"\x93NUMPY"
) -> bytes:
    text = (repr(header) if not isinstance(header, str) else header).encode("latin-1", "replace")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * (pad % 64) + b"\n"
    size = len(text) if hlen is None else hlen
    if version == 1:
        head = magic + bytes([1, 0]) + (size & 0xFFFF).to_bytes(2, "little")
    else:
        head = magic + bytes([version & 0xFF, 0]) + (size & 0xFFFFFFFF).to_bytes(4, "little")
    return head + text + body


# ------------------------------------------------------------------------------------------------ mutators


@dataclass
class Context:
    folder: Path
    root: Path  # the case's root: set/, out/, outside/
    mark: str  # absolute path of the planted mark
    base: BaseSet
    http: bool = False  # served over HTTP (the test server would block on a FIFO: none are made)

    def text(self, value: Any) -> str:
        return str(value).replace("{MARK}", self.mark)

    def shard(self, index: int) -> Path:
        suffix = {"gz": ".tar.gz", "h5": ".h5"}.get(self.base.key, ".tar")
        return self.folder / f"{SET_NAME}-{index:06d}{suffix}"

    def sidecar(self, index: int) -> Path:
        return self.shard(index).with_name(self.shard(index).name + ".json")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() and not path.is_symlink() else None
    except OSError:
        return None


def _layers(ctx: Context, m: dict) -> tuple[Path, bytes, Callable[[bytes], bytes], Callable[[bytes], bytes]] | None:
    """(shard path, bytes of the chosen layer, encode back, identity) — the tar inside a .tar.gz for layer 'tar'."""
    path = ctx.shard(m["shard"])
    raw = _read(path)
    if raw is None:
        return None
    if m.get("layer") == "tar" and ctx.base.key == "gz":
        try:
            inner = gzip.decompress(raw)
        except (OSError, EOFError, ValueError, zlib_error()):
            return None
        return path, inner, lambda b: gzip.compress(b, compresslevel=1, mtime=0), lambda b: b
    return path, raw, lambda b: b, lambda b: b


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def mutate_bytes(ctx: Context, m: dict) -> None:
    got = _layers(ctx, m)
    if got is None:
        return
    path, data, encode, _ = got
    b = bytearray(data)
    pos = m["pos"] % (len(b) + 1)
    extra = bytes.fromhex(m["data"])
    mode = m["mode"]
    if mode == "flip" and b:
        b[pos % len(b)] ^= 1 + (m["n"] % 255)
    elif mode == "set":
        b[pos : pos + len(extra)] = extra
    elif mode == "insert":
        b[pos:pos] = extra
    elif mode == "delete":
        del b[pos : pos + m["n"]]
    elif mode == "truncate":
        del b[pos:]
    elif mode == "append":
        b += extra * m["n"]
    elif mode == "copy":
        b[pos:pos] = b[: m["n"]]
    path.write_bytes(encode(bytes(b)))


def _with_members(ctx: Context, m: dict, change: Callable[[list[Member]], bool | None], fix_sizes: bool = True) -> None:
    got = _layers(ctx, m)
    if got is None:
        return
    path, data, encode, _ = got
    members = parse_tar(data)
    if not members:
        return
    if change(members) is False:
        return
    path.write_bytes(encode(build_tar(members, fix_sizes)))


def mutate_tar_header(ctx: Context, m: dict) -> None:
    value = ctx.text(m["value"]).encode("utf-8", "surrogatepass")
    fields = {
        "name": (0, 100),
        "mode": (100, 108),
        "uid": (108, 116),
        "size": (124, 136),
        "mtime": (136, 148),
        "checksum": (148, 156),
        "type": (156, 157),
        "linkname": (157, 257),
        "magic": (257, 265),
        "prefix": (345, 500),
    }

    def change(members: list[Member]) -> None:
        member = members[m["member"] % len(members)]
        a, b = fields[m["field"]]
        member.header[a:b] = value[: b - a].ljust(b - a, b"\0")
        if m["fix_checksum"] and m["field"] != "checksum":
            _checksum(member.header)

    _with_members(ctx, m, change, fix_sizes=m["field"] != "size")


def mutate_tar_member(ctx: Context, m: dict) -> None:
    name = ctx.text(m["name"]).encode("utf-8", "surrogatepass")
    data = bytes.fromhex(m["data"])

    def change(members: list[Member]) -> bool | None:
        i, j = m["member"] % len(members), m["other"] % len(members)
        action = m["action"]
        if action == "drop":
            del members[i]
        elif action == "dup":
            members.insert(j, Member(bytearray(members[i].header), members[i].data))
        elif action == "swap":
            members[i], members[j] = members[j], members[i]
        elif action == "rename":
            members[i].header[0:100] = name[:100].ljust(100, b"\0")
            _checksum(members[i].header)
        elif action == "add":
            members.insert(j, Member(_header(name, len(data)), data))
        elif action == "move_last":
            members.append(members.pop(i))
        elif action == "pax":  # a pax header naming the next member
            record = b"path=" + name + b"\n"
            text = str(len(record) + 4).encode() + b" " + record
            length = len(text) + len(str(len(text)))
            text = str(length).encode() + b" " + record
            members.insert(i, Member(_header(b"././@PaxHeader", len(text), b"x"), text))
        elif action == "gnu_long":
            members.insert(i, Member(_header(b"././@LongLink", len(name) + 1, b"L"), name + b"\0"))
        elif action == "link":
            h = _header(members[i].name.encode("latin-1"), 0, b"2")
            h[157:257] = name[:100].ljust(100, b"\0")
            _checksum(h)
            members[i] = Member(h, b"")
        return None

    _with_members(ctx, m, change)


def mutate_npy(ctx: Context, m: dict) -> None:
    def change(members: list[Member]) -> bool | None:
        npys = [x for x in members if x.name.endswith(".npy")]
        if not npys:
            return False
        member = npys[m["member"] % len(npys)]
        parts = npy_parts(member.data)
        if parts is None:
            return False
        header, body = parts
        value, field = m["value"], m["field"]
        if field == "descr":
            header["descr"] = value if isinstance(value, str) else str(value)
        elif field == "shape":
            header["shape"] = tuple(value) if isinstance(value, (list, tuple)) else value
        elif field == "fortran":
            header["fortran_order"] = value if isinstance(value, bool) else bool(value)
        if field == "version":
            member.data = npy_bytes(header, body, version=int(value) % 5 if isinstance(value, int) else 2)
        elif field == "hlen":
            member.data = npy_bytes(header, body, hlen=int(value) if isinstance(value, int) else 0)
        elif field == "magic":
            member.data = npy_bytes(header, body, magic=b"\x93NUMPX")
        elif field == "payload":  # an object array: numpy would need pickle to read it
            import pickle

            payload = pickle.dumps([f"touch {ctx.mark}"], protocol=2)
            member.data = npy_bytes({"descr": "|O", "fortran_order": False, "shape": (1,)}, payload)
        elif field == "garbage_header":
            member.data = npy_bytes(ctx.text(value), body)
        elif field == "extra_data":
            member.data = npy_bytes(header, body + b"\0" * (1 + (len(str(value)) % 64)))
        else:
            member.data = npy_bytes(header, body)
        return None

    _with_members(ctx, m, change)


def mutate_pixel(ctx: Context, m: dict) -> None:
    def change(members: list[Member]) -> bool | None:
        images = [x for x in members if x.name.endswith((".support.npy", ".query.npy"))]
        parts = npy_parts(images[m["member"] % len(images)].data) if images else None
        if not parts or not parts[1]:
            return False
        member = images[m["member"] % len(images)]
        body = bytearray(parts[1])
        body[m["offset"] % len(body)] ^= m["xor"]
        member.data = member.data[: len(member.data) - len(body)] + bytes(body)
        return None

    _with_members(ctx, m, change)


def mutate_meta(ctx: Context, m: dict) -> None:
    value = ctx.text(bytes.fromhex(m["value"]).decode("latin-1")).encode("latin-1", "replace")

    def change(members: list[Member]) -> bool | None:
        metas = [x for x in members if x.name.endswith(".meta.json")]
        if not metas:
            return False
        metas[m["task"] % len(metas)].data = value
        return None

    _with_members(ctx, m, change)


def mutate_gzip(ctx: Context, m: dict) -> None:
    path = ctx.shard(m["shard"])
    raw = _read(path)
    if raw is None:
        return
    action, value, data = m["action"], m["value"], bytes.fromhex(m["data"])
    b = bytearray(raw)
    if action == "plain":  # a .tar that is gzip, or a .tar.gz that is not
        if raw[:2] == b"\x1f\x8b":
            try:
                b = bytearray(gzip.decompress(raw))
            except (OSError, EOFError, zlib_error()):
                return
        else:
            b = bytearray(gzip.compress(raw, mtime=0))
    elif raw[:2] != b"\x1f\x8b" or len(b) < 18:
        return
    elif action == "flags":
        b[3] = value & 0xFF
    elif action == "crc":
        b[-8:-4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
    elif action == "isize":
        b[-4:] = (value & 0xFFFFFFFF).to_bytes(4, "little")
    elif action == "concat":
        b += gzip.compress(data, mtime=0)
    elif action == "trailing":
        b += data
    elif action == "padding":
        b += bytes(1 + value % 100)
    elif action == "relevel":
        try:
            b = bytearray(gzip.compress(gzip.decompress(raw), compresslevel=1 + value % 9, mtime=value % 1000))
        except (OSError, EOFError, zlib_error()):
            return
    elif action == "cut_deflate":
        del b[10 + value % max(1, len(b) - 18) :]
    elif action == "extra":  # FEXTRA with a length that may not fit
        b[3] |= 4
        b[10:10] = (value & 0xFFFF).to_bytes(2, "little") + data
    elif action == "name":  # FNAME with a hostile name
        b[3] |= 8
        b[10:10] = ctx.text(HOSTILE[value % len(HOSTILE)]).encode("utf-8", "replace").replace(b"\0", b"") + b"\0"
    elif action == "method":
        b[2] = value & 0xFF
    path.write_bytes(bytes(b))


def mutate_hdf5(ctx: Context, m: dict) -> None:
    import h5py

    path = ctx.shard(m["shard"])
    if _read(path) is None:
        return
    outside = ctx.root / "outside"
    try:
        f = h5py.File(path, "r+")
    except (OSError, ValueError):
        return
    with f:
        action, name, value = m["action"], m["dataset"], m["value"]
        try:
            if action == "attr":
                raw = f.attrs.get(m["key"])
                try:
                    record = json.loads(raw) if raw is not None else {}
                except (ValueError, TypeError):
                    record = {}
                if isinstance(record, dict) and m["path"] is not None:
                    record[m["path"]] = value
                    f.attrs[m["key"]] = json.dumps(record, allow_nan=True)
                else:
                    f.attrs[m["key"]] = ctx.text(json.dumps(value, allow_nan=True))
            elif action == "attr_type":
                f.attrs[m["key"]] = np.arange(m["n"] + 1)
            elif action == "extra_dataset":
                f.create_dataset(ctx.text(value)[:40] or "extra", data=np.zeros(3, np.uint8))
            elif action == "group":
                f.create_group("group" if m["n"] % 2 else "support_group")
            elif action == "softlink":
                if name in f:
                    del f[name]
                f[name] = h5py.SoftLink("/support" if m["n"] % 2 else "/nothing")
            elif action == "extlink":
                if name in f:
                    del f[name]
                target = [str(outside / "secret.h5"), ctx.text(f"pipe:touch {MARK}"), "/etc/passwd"][m["n"] % 3]
                f[name] = h5py.ExternalLink(target, "/support")
            elif action == "virtual":
                if name in f:
                    del f[name]
                layout = h5py.VirtualLayout(shape=(PER_SHARD, WAYS, SHOTS, SIZE, SIZE, 1), dtype=np.uint8)
                layout[:] = h5py.VirtualSource(str(outside / "secret.h5"), "support", shape=layout.shape)
                f.create_virtual_dataset(name, layout)
            elif action == "external":
                if name in f:
                    del f[name]
                shape = (PER_SHARD, WAYS, SHOTS, SIZE, SIZE, 1)
                f.create_dataset(
                    name, shape=shape, dtype=np.uint8, external=[(str(outside / "secret"), 0, int(np.prod(shape)))]
                )
            elif action in ("dtype", "compound", "scalar"):
                if name in f:
                    del f[name]
                if action == "dtype":
                    dtype = [np.float32, np.int16, np.float16, np.uint16, np.int8][m["n"] % 5]
                    f.create_dataset(name, data=np.zeros((PER_SHARD, WAYS, SHOTS, SIZE, SIZE, 1), dtype))
                elif action == "compound":
                    f.create_dataset(name, data=np.zeros(PER_SHARD, dtype=[("a", np.uint8), ("b", np.float32)]))
                else:
                    f.create_dataset(name, data=np.uint8(7))
            elif action == "meta":
                if "meta" in f and f["meta"].shape and f["meta"].shape[0]:
                    f["meta"][m["n"] % f["meta"].shape[0]] = ctx.text(json.dumps(value, allow_nan=True))
            elif action == "resize":
                data = f[name][...] if name in f and isinstance(f[name], h5py.Dataset) else None
                if data is not None and data.ndim:
                    del f[name]
                    count = m["n"]
                    new = np.resize(data, (count,) + data.shape[1:]) if data.dtype != object else data[:count]
                    f.create_dataset(name, data=new)
            elif action == "drop":
                if name in f:
                    del f[name]
            elif action == "pixel":
                if "support" in f and f["support"].ndim == 6 and f["support"].shape[0]:
                    f["support"][0, 0, 0, 0, 0, 0] = (int(f["support"][0, 0, 0, 0, 0, 0]) + 1 + m["n"]) % 256
            elif action == "chunks":
                if name in f and isinstance(f[name], h5py.Dataset):
                    data = f[name][...]
                    del f[name]
                    f.create_dataset(name, data=data, compression="lzf" if m["n"] % 2 else None)
        except (ValueError, TypeError, KeyError, OSError, RuntimeError):
            pass  # a mutation h5py itself refuses to write is simply not applied


def mutate_fs(ctx: Context, m: dict) -> None:
    target = {"shard": ctx.shard, "sidecar": ctx.sidecar, "manifest": lambda i: ctx.folder / "manifest.json"}[
        m["target"]
    ](m["index"])
    outside = ctx.root / "outside"
    action = m["action"]
    exists = target.exists() or target.is_symlink()
    if action == "stray":  # a well-named shard the manifest does not list
        if ctx.shard(0).is_file():
            shutil.copyfile(ctx.shard(0), ctx.shard(7))
        return
    if action == "hostile_file":
        name = ctx.text(m["name"]).replace("/", "_").replace("\0", "_") or "_"
        with contextlib.suppress(OSError):
            (ctx.folder / name).write_bytes(b"not a shard")
        return
    if action == "tmp_file":
        (ctx.folder / f".{target.name}.tmp").write_bytes(b"partial")
        return
    if not exists:
        return
    if action == "delete":
        target.unlink()
    elif action == "empty":
        target.unlink()
        target.write_bytes(b"")
    elif action == "folder":
        target.unlink()
        target.mkdir()
    elif action == "symlink_out":
        target.unlink()
        target.symlink_to(outside / "secret")
    elif action == "symlink_other":
        other = ctx.shard((m["index"] + 1) % SHARDS)
        target.unlink()
        target.symlink_to(other.name)
    elif action == "hardlink_out":
        target.unlink()
        os.link(outside / "secret", target)
    elif action == "fifo" and not ctx.http:
        target.unlink()
        os.mkfifo(target)
    elif action == "swap":
        other = ctx.shard((m["index"] + 1) % SHARDS) if m["target"] != "manifest" else ctx.sidecar(0)
        if other.exists() and not other.is_symlink():
            tmp = target.with_name(target.name + ".swap")
            target.rename(tmp)
            other.rename(target)
            tmp.rename(other)


def _json_target(ctx: Context, m: dict) -> Path:
    return ctx.folder / "manifest.json" if m["file"] == "manifest" else ctx.sidecar(m["index"])


def _plant(value: Any, ctx: Context) -> Any:
    if isinstance(value, str):
        return ctx.text(value)
    if isinstance(value, list):
        return [_plant(v, ctx) for v in value]
    if isinstance(value, dict):
        return {ctx.text(k): _plant(v, ctx) for k, v in value.items()}
    return value


def mutate_json(ctx: Context, m: dict) -> None:
    path = _json_target(ctx, m)
    raw = _read(path)
    if raw is None:
        return
    try:
        doc = json.loads(raw)
    except ValueError:
        return
    node, keys = doc, list(m["path"])
    for key in keys[:-1]:
        if isinstance(node, dict) and isinstance(key, str) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return
    last, value = keys[-1], _plant(m["value"], ctx)
    action = m["action"]
    if isinstance(node, dict) and isinstance(last, str):
        if action == "delete":
            node.pop(last, None)
        elif action == "add":
            node[ctx.text(str(m["value"]))[:20]] = value
        else:
            node[last] = value
    elif isinstance(node, list) and isinstance(last, int):
        if action == "delete" and last < len(node):
            del node[last]
        elif action == "add":
            node.insert(min(last, len(node)), value)
        elif last < len(node):
            node[last] = value
    path.write_bytes(json.dumps(doc, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def mutate_json_raw(ctx: Context, m: dict) -> None:
    path = _json_target(ctx, m)
    raw = _read(path)
    if raw is None:
        return
    pos = m["pos"] % (len(raw) + 1)
    action = m["action"]
    out = {
        "truncate": lambda: raw[:pos],
        "nonutf8": lambda: raw[:pos] + b"\xff\xfe\xc3" + raw[pos:],
        "deep": lambda: b'{"format": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        "huge": lambda: raw.replace(b'"num_tasks": 6', b'"num_tasks": ' + b"9" * 5000, 1),
        "nan": lambda: raw.replace(b'"bytes": ', b'"bytes": NaN, "x": ', 1),
        "dupkeys": lambda: raw.replace(b'"format_version": 1', b'"format_version": 1, "format_version": 2', 1),
        "bom": lambda: b"\xef\xbb\xbf" + raw,
        "trailing": lambda: raw + b"\n{} garbage",
        "empty": lambda: b"",
        "list": lambda: b"[" + raw + b"]",
        "utf16": lambda: raw.decode("utf-8", "replace").encode("utf-16"),
        "control": lambda: raw.replace(b'"fuzz"', b'"fu\\u001b[2Jzz\\nbad: line"', 1),
    }[action]()
    path.write_bytes(out)


MUTATORS: dict[str, Callable[[Context, dict], None]] = {
    "bytes": mutate_bytes,
    "tar_header": mutate_tar_header,
    "tar_member": mutate_tar_member,
    "npy": mutate_npy,
    "meta": mutate_meta,
    "pixel": mutate_pixel,
    "gzip": mutate_gzip,
    "hdf5": mutate_hdf5,
    "fs": mutate_fs,
    "json": mutate_json,
    "json_raw": mutate_json_raw,
}


def reseal(ctx: Context) -> None:
    """Rewrite sizes and sha256 in the manifest and sidecars to match the files as they are now."""

    def fix(entry: Any) -> None:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            return
        path = ctx.folder / entry["file"]
        if "/" in entry["file"] or "\0" in entry["file"] or not path.is_file():
            return
        data = path.read_bytes()
        entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()

    for path in [ctx.folder / "manifest.json", *ctx.folder.glob("*.json")]:
        raw = _read(path)
        if raw is None:
            continue
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if not isinstance(doc, dict):
            continue
        for entry in doc.get("shards", []) if isinstance(doc.get("shards"), list) else []:
            fix(entry)
        fix(doc.get("shard"))
        path.write_bytes(json.dumps(doc, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass"))


# ------------------------------------------------------------------------------------------------ running a case


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its type and content digest (links: their target)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st_ = p.lstat()
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = "link:" + os.readlink(p)
            elif stat.S_ISREG(st_.st_mode):
                out[rel] = "file:" + hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = "dir"
            else:
                out[rel] = f"other:{stat.S_IFMT(st_.st_mode)}"
    return out


def marks(root: Path, mark: str) -> list[str]:
    """Files a planted command made: ``touch PWNED`` (relative to some folder) or ``touch <absolute mark>``."""
    found = [str(p) for p in root.rglob(MARK)]
    return found + ([mark] if os.path.lexists(mark) else [])


@dataclass
class Outcome:
    violations: list[str] = field(default_factory=list)
    commands: int = 0


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def check_cli(what: str, result: Any, allowed_codes: tuple[int, ...]) -> list[str]:
    """Invariants 1 and 2 on a click result."""
    problems = []
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-1500:]
        return [f"{what}: traceback ({type(exc).__name__}: {exc})\n{tb}"]
    code = result.exit_code
    if code not in allowed_codes:
        problems.append(f"{what}: exit {code} (allowed {allowed_codes})")
    out, err = result.stdout, result.stderr
    if "Traceback" in out + err:
        problems.append(f"{what}: a traceback in the output")
    if CONTROL.search(out + err):
        problems.append(f"{what}: control characters in the output: {(out + err)[:300]!r}")
    info = ("note: ", "warning: ", "run folder: ", "done: ")
    if code == 2:
        errors = [line for line in _lines(err) if not line.startswith(info)]
        if len(errors) != 1 or not errors[0].startswith("error: ") or _lines(out):
            problems.append(f"{what}: exit 2 without exactly one error line: {err[:400]!r} {out[:200]!r}")
    elif code == 1:
        bad = [line for line in _lines(out) if not line.startswith("bad: ")]
        other = [line for line in _lines(err) if not line.startswith(info + ("verify failed: ",))]
        if bad or other:
            problems.append(f"{what}: exit 1 with lines that are not one problem each: {(bad + other)[:3]!r}")
    return problems


def _listed_entries(folder: Path) -> list[dict] | None:
    """The shard entries the set vouches for as the reader would see them (manifest, else sidecars), or None."""
    try:
        doc = json.loads((folder / "manifest.json").read_bytes())
        return [e for e in doc["shards"] if isinstance(e, dict)]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    entries = []
    for p in folder.glob("*.json"):
        try:
            doc = json.loads(p.read_bytes())
            entries.append(doc["shard"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue
    return entries or None


def check_verify_ok(folder: Path) -> list[str]:
    """Invariant 5 for ``verify`` saying ok: every listed shard has its recorded size and sha256."""
    entries = _listed_entries(folder)
    problems = []
    sidecars_only = not (folder / "manifest.json").is_file()
    for e in entries or []:
        if sidecars_only and not (isinstance(e.get("file"), str) and (folder / e["file"]).is_file()):
            continue  # a sidecar without its shard is a gap (refused, or noted with --allow-partial)
        try:
            data = (folder / e["file"]).read_bytes()
        except (OSError, KeyError, TypeError):
            problems.append(f"verify: ok, but listed shard {e.get('file')!r} cannot be read")
            continue
        if len(data) != e.get("bytes") or hashlib.sha256(data).hexdigest() != e.get("sha256"):
            problems.append(f"verify: ok, but {e['file']} does not have its recorded size and sha256")
    return problems


def vouched(folder: Path) -> bool:
    """Whether the set claims to vouch for its shards (a manifest or a sidecar exists)."""
    return (folder / "manifest.json").exists() or any(folder.glob("*.json"))


def check_task(task_index: int, arrays: tuple[np.ndarray, ...], base: BaseSet, exact: bool) -> str | None:
    want = base.tasks.get(task_index)
    support, query = arrays[0], arrays[1]
    if exact:
        if want is None:
            return f"stream: yielded task {task_index}, which the original set does not hold"
        if not (np.array_equal(support, want.support) and np.array_equal(query, want.query)):
            return f"stream: task {task_index} differs from the original task of that index (changed bytes reached it)"
        return None
    ref = next(iter(base.tasks.values()))
    if support.dtype != np.uint8 or support.shape != ref.support.shape or query.shape != ref.query.shape:
        return f"stream: task {task_index} has shape {support.shape}/{query.shape}, not the set's layout"
    return None


def run_stream(source: str, case: dict, base: BaseSet, exact: bool) -> list[str]:
    """The trainer's task stream in-process: open_mixture → TaskStream (one round, no DataLoader)."""
    from lasium.errors import LasiumError
    from lasium.train.mixture import open_mixture
    from lasium.train.streaming import TaskStream

    problems = []
    try:
        shard_set, mixture = open_mixture([source], allow_partial=case["allow_partial"])
        stream = TaskStream(
            shard_set,
            1,
            seed=0,
            workers=0,
            shuffle_buffer=1,
            skip_corrupt=case["skip_corrupt"],
            endless=False,
            mixture=mixture,
        )
        with contextlib.redirect_stderr(io.StringIO()) as err:
            for item in stream:
                if "error" in item:
                    if "\n" in item["error"] or CONTROL.search(item["error"]):
                        problems.append(f"stream: error message is not one clean line: {item['error'][:300]!r}")
                    break
                for index, support, query in zip(item["indices"].tolist(), item["support"], item["query"]):
                    problem = check_task(int(index), (support, query), base, exact)
                    if problem:
                        problems.append(problem)
        if CONTROL.search(err.getvalue()):
            problems.append(f"stream: control characters in its warnings: {err.getvalue()[:300]!r}")
    except LasiumError as exc:
        if "\n" in str(exc) or CONTROL.search(str(exc)):
            problems.append(f"stream: error message is not one clean line: {str(exc)[:300]!r}")
    except Exception as exc:  # invariant 1: anything else is a traceback
        tb = traceback.format_exc()[-1500:]
        problems.append(f"stream: traceback ({type(exc).__name__}: {exc})\n{tb}")
    return problems


_REFERENCE_PNG: dict[tuple[str, tuple[int, ...]], bytes] = {}


def reference_preview(base: BaseSet, indices: tuple[int, ...], scratch: Path) -> bytes | None:
    from lasium.shards.card import save_preview

    key = (base.key, indices)
    if key not in _REFERENCE_PNG:
        if any(i not in base.tasks for i in indices):
            return None
        out = scratch / f"ref-{base.key}-{'-'.join(map(str, indices))}.png"
        save_preview([base.tasks[i] for i in indices], out)
        _REFERENCE_PNG[key] = out.read_bytes()
        out.unlink()
    return _REFERENCE_PNG[key]


def commands(source: str, out: Path, case: dict) -> list[tuple[str, Any, list[str], tuple[int, ...], list[str]]]:
    """(name, click command, args, allowed exit codes, paths it may write below the case root)."""
    from lasium.shards.cli import main as shards_main
    from lasium.train.cli import main as train_main

    partial = ["--allow-partial"] if case["allow_partial"] else []
    cmds = [
        ("verify", shards_main, ["verify", source, "--no-progress", *partial], (0, 1, 2), []),
        ("inspect", shards_main, ["inspect", source], (0, 2), []),
        ("inspect --json", shards_main, ["inspect", source, "--json"], (0, 2), []),
        (
            "preview",
            shards_main,
            ["preview", source, "--tasks", "2", "--out", str(out / "p.png"), *partial],
            (0, 2),
            ["out/p.png"],
        ),
    ]
    if case["train_cli"]:
        args = ["--shards", source, "--algo", "protonets", "--iterations", "2", "--meta-batch", "1", "--workers", "0"]
        args += ["--shuffle-buffer", "2"]
        args += [
            "--val-dataset",
            "none",
            "--device",
            "cpu",
            "--out",
            str(out / "run"),
            "--quiet",
            "--checkpoint-every",
            "0",
        ]
        args += (["--skip-corrupt"] if case["skip_corrupt"] else []) + partial
        cmds.append(("lasium-train", train_main, args, (0, 2), ["out/run"]))
    if case["where"] != "http":
        cmds.append(
            (
                "index",
                shards_main,
                ["index", source.removesuffix("/manifest.json"), *(["--allow-gaps"] if case["allow_partial"] else [])],
                (0, 2),
                ["set/manifest.json"],
            )
        )
    return cmds


def run_case(case: dict, bases: dict[str, BaseSet], work: Path, base_url: str | None) -> list[str]:
    """Build the case's set under a fresh folder of ``work``, run every command, return the broken invariants."""
    from click.testing import CliRunner

    from lasium.shards.integrity import forget_checked

    base = bases[case["base"]]
    root = Path(tempfile.mkdtemp(prefix="case-", dir=work))
    folder, out, outside = root / "set", root / "out", root / "outside"
    shutil.copytree(base.folder, folder)
    out.mkdir()
    outside.mkdir()
    (outside / "secret").write_bytes(
        base.files[f"{SET_NAME}-000000" + {"gz": ".tar.gz", "h5": ".h5"}.get(base.key, ".tar")]
    )
    shutil.copyfile(outside / "secret", outside / "secret.h5")
    mark = str(work / f"{MARK}-abs-{root.name}")
    ctx = Context(folder, root, mark, base, http=case["where"] == "http")
    for m in case["mutations"]:
        MUTATORS[m["op"]](ctx, m)
    if case["drop_manifest"]:
        drop = folder / "manifest.json"
        if drop.is_dir() and not drop.is_symlink():
            shutil.rmtree(drop)
        elif drop.exists() or drop.is_symlink():
            drop.unlink()
    if case["reseal"]:
        reseal(ctx)
    exact = not case["reseal"] and vouched(folder)
    if case["where"] == "http":
        source = f"{base_url}/{root.name}/set/manifest.json"
    elif case["where"] == "manifest":
        source = str(folder / "manifest.json")
    elif case["where"] == "inside":
        source = "."
    else:
        source = str(folder)
    cwd = folder if case["where"] == "inside" else root
    violations: list[str] = []
    before_work = sorted(p.name for p in work.iterdir())
    os.chdir(cwd)
    forget_checked()
    snap = snapshot(root)
    violations += run_stream(source, case, base, exact)
    for name, cli, args, codes, writable in commands(source, out, case):
        forget_checked()
        result = CliRunner().invoke(cli, args)
        violations += check_cli(name, result, codes)
        after = snapshot(root)
        for path in sorted(set(snap) | set(after)):
            if snap.get(path) != after.get(path) and not any(path == w or path.startswith(w + "/") for w in writable):
                violations.append(
                    f"{name}: wrote {path} ({snap.get(path)} -> {after.get(path)}), outside what it may write"
                )
        snap = after
        if name == "verify" and result.exit_code == 0:
            violations += check_verify_ok(folder)
        if name == "preview" and result.exit_code == 0 and exact:
            m = re.search(r"tasks ([0-9, ]+)$", result.stdout.strip())
            indices = tuple(int(x) for x in m.group(1).split(", ")) if m else ()
            want = reference_preview(base, indices, work)
            if want is None or (out / "p.png").read_bytes() != want:
                violations.append(f"preview: drew tasks {indices} that are not the original tasks")
    found = marks(work, mark)
    if found:
        violations.append(f"a planted command ran: {found}")
    after_work = sorted(p.name for p in work.iterdir())
    if after_work != before_work:
        violations.append(f"wrote outside the case folder: {sorted(set(after_work) ^ set(before_work))}")
    return violations


def run_isolated(case: dict, bases: dict[str, BaseSet], work: Path, base_url: str | None, timeout: float) -> list[str]:
    """``run_case`` in a forked child: a crash, a hang (``timeout``) or a stray exception is a broken invariant."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report as JSON, leave without cleanup handlers
        os.close(read_fd)
        try:
            result = run_case(case, bases, work, base_url)
        except BaseException as exc:  # a bug of the fuzzer or of the code under test outside a command
            result = [f"fuzz case raised {type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"]
        with os.fdopen(write_fd, "wb") as w:
            w.write(json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    chunks: list[bytes] = []

    def read_all() -> None:
        while True:
            data = os.read(read_fd, 1 << 20)
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        reader.join(1)
        os.close(read_fd)
        return [f"hang: the case did not finish within {timeout:.0f} s"]
    reader.join(5)
    os.close(read_fd)
    if os.WIFSIGNALED(status):
        return [f"crash: the case's process died of signal {os.WTERMSIG(status)}"]
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return [f"crash: the case's process exited {os.WEXITSTATUS(status)} without a report"]


# ------------------------------------------------------------------------------------------------ the campaign


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def campaign_env(work: Path) -> Iterator[tuple[dict[str, BaseSet], str]]:
    """The base sets (built in ``work/bases``) and an HTTP server on 127.0.0.1 serving ``work``.

    Everything a case uses is imported here, once, so that each forked case starts warm.
    """
    import h5py  # noqa: F401
    import PIL.Image  # noqa: F401
    from click.testing import CliRunner

    import lasium.shards.card  # noqa: F401
    import lasium.shards.cli  # noqa: F401
    import lasium.train.cli  # noqa: F401
    import lasium.train.mixture  # noqa: F401
    import lasium.train.streaming  # noqa: F401
    import lasium.train.trainer  # noqa: F401

    bases_dir = work / "bases"
    bases = {key: build_base(key, bases_dir / key) for key in BASES}
    warm = CliRunner().invoke(  # one run of the trainer here, so forked cases do not each pay its first-call costs
        lasium.train.cli.main,
        ["--shards", str(bases_dir / "tar"), "--algo", "protonets", "--iterations", "1", "--meta-batch", "1"]
        + ["--workers", "0", "--val-dataset", "none", "--device", "cpu", "--quiet", "--shuffle-buffer", "2"]
        + ["--checkpoint-every", "0", "--out", str(bases_dir / "warm-run")],
    )
    assert warm.exit_code == 0, warm.output
    shutil.rmtree(bases_dir / "warm-run")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(work)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield bases, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Tally:
    cases: int = 0
    broken: list[tuple[dict, list[str]]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


# Hypothesis profiles. Every case runs to the end (a broken invariant is recorded, not raised), so there is no
# shrinking; the reproducer is the case itself. No example database: the campaign writes nothing of its own.
_COMMON = {
    "deadline": None,
    "database": None,
    "phases": [Phase.explicit, Phase.generate],
    "suppress_health_check": list(HealthCheck),
    "print_blob": False,
}
settings.register_profile("lasium-fuzz-ci", max_examples=12, derandomize=True, **_COMMON)  # the test suite's run
settings.register_profile("lasium-fuzz-long", max_examples=10_000, derandomize=False, **_COMMON)  # this script


def run_campaign(
    n_cases: int | None = None,
    *,
    profile: str = "lasium-fuzz-long",
    seed: int | None = 0,
    work: Path,
    timeout: float = 300.0,
    on_case: Callable[[Tally, dict, list[str]], None] | None = None,
    env: tuple[dict[str, BaseSet], str] | None = None,
) -> Tally:
    """Run the Hypothesis profile's cases (``n_cases`` of them when given); every case runs (failures are recorded,
    not raised). ``seed`` fixes the cases of a profile that is not derandomized. ``env``: the base sets and server
    of a :func:`campaign_env` already open on ``work``."""
    tally = Tally()
    chosen = settings.get_profile(profile)
    if n_cases is not None:
        chosen = settings(chosen, max_examples=n_cases)
    with contextlib.nullcontext(env) if env is not None else campaign_env(work) as (bases, base_url):

        @chosen
        @given(case=cases)
        def one(case: dict) -> None:
            violations = run_isolated(case, bases, work, base_url, timeout)
            tally.cases += 1
            if violations:
                tally.broken.append((case, violations))
            if on_case is not None:
                on_case(tally, case, violations)
            for case_dir in work.glob("case-*"):
                shutil.rmtree(case_dir, ignore_errors=True)

        if seed is not None and not chosen.derandomize:
            one = hypothesis_seed(seed)(one)
        here = os.getcwd()
        try:
            one()
        finally:
            os.chdir(here)
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000, help="How many mutated sets to try.")
    ap.add_argument("--seed", type=int, default=0, help="Hypothesis seed (the same seed draws the same cases).")
    ap.add_argument(
        "--timeout", type=float, default=300.0, help="Seconds one case may take before it counts as a hang."
    )
    ap.add_argument("--work", type=Path, default=None, help="Scratch folder [default: a temporary folder].")
    ap.add_argument(
        "--failures", type=Path, default=Path("fuzz-failures"), help="Where each failing case is saved as JSON."
    )
    ap.add_argument(
        "--replay", type=Path, default=None, help="Run one saved case (a JSON file) and print what it broke."
    )
    ap.add_argument("--every", type=int, default=100, help="Print progress every N cases.")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="lasium-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    work = work.resolve()
    if args.replay is not None:
        case = json.loads(args.replay.read_text())
        with campaign_env(work) as (bases, base_url):
            violations = run_isolated(case, bases, work, base_url, args.timeout)
        print(json.dumps(case))
        print("\n".join(violations) or "no invariant broken")
        sys.exit(1 if violations else 0)

    def progress(tally: Tally, case: dict, violations: list[str]) -> None:
        if violations:
            args.failures.mkdir(parents=True, exist_ok=True)
            saved = args.failures / f"case-{tally.cases}.json"
            saved.write_text(json.dumps(case) + "\n")
            print(
                f"case {tally.cases} broke {len(violations)} invariant(s); "
                f"reproduce: python {sys.argv[0]} --replay {saved}"
            )
            for v in violations:
                print("  " + v.replace("\n", "\n    "))
        if tally.cases % args.every == 0:
            elapsed = time.monotonic() - tally.started
            print(f"{tally.cases} cases, {len(tally.broken)} broke an invariant, {elapsed:.0f} s", flush=True)

    started = time.time()
    tally = run_campaign(args.cases, seed=args.seed, work=work, timeout=args.timeout, on_case=progress)
    elapsed = time.time() - started
    print(
        f"tried {tally.cases} cases (seed {args.seed}) in {elapsed:.0f} s: {len(tally.broken)} broke an invariant"
        + (f" (reproducers in {args.failures}/)" if tally.broken else "")
    )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if tally.broken else 0)


if __name__ == "__main__":
    main()
