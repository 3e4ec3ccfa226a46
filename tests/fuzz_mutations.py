"""The fuzz campaign's file-level mutations (``tests/fuzz_sets.py``), and the registry of all mutations.

``MUTATORS[op](ctx, mutation)`` applies one mutation drawn by ``fuzz_cases``: the byte-level and container ones
of ``fuzz_tar``, and here HDF5 objects and attributes, files (deleted, emptied, swapped, turned into folders,
FIFOs or links out of the set), and the JSON of manifests and sidecars (fields set to any JSON value, deleted,
added; raw damage). ``reseal`` rewrites the sizes and sha256 in the manifest and sidecars to match the damaged
files. Nothing here reads a set with lasium.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fuzz_cases import MARK, PER_SHARD, SHARDS, SHOTS, SIZE, WAYS
from fuzz_tar import (
    Context,
    mutate_bytes,
    mutate_gzip,
    mutate_meta,
    mutate_npy,
    mutate_pixel,
    mutate_tar_header,
    mutate_tar_member,
    read_regular,
)


def mutate_hdf5(ctx: Context, m: dict) -> None:
    import h5py

    path = ctx.shard(m["shard"])
    if read_regular(path) is None:
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
                except (ValueError, TypeError, RecursionError):
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


def _remove(path: Path) -> None:
    """Remove a file, link, FIFO or folder (an earlier mutation may have turned a file into a folder)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


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
        _remove(target)
    elif action == "empty":
        _remove(target)
        target.write_bytes(b"")
    elif action == "folder":
        _remove(target)
        target.mkdir()
    elif action == "symlink_out":
        _remove(target)
        target.symlink_to(outside / "secret")
    elif action == "symlink_other":
        other = ctx.shard((m["index"] + 1) % SHARDS)
        _remove(target)
        target.symlink_to(other.name)
    elif action == "hardlink_out":
        _remove(target)
        os.link(outside / "secret", target)
    elif action == "fifo" and not ctx.http:
        _remove(target)
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
    raw = read_regular(path)
    if raw is None:
        return
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # an earlier mutation may have damaged it, or nested it too deep to parse
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
    raw = read_regular(path)
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
        raw = read_regular(path)
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
