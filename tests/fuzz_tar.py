"""The fuzz campaign's byte-level and container mutations (``tests/fuzz_sets.py``): raw bytes, tar headers
and members, ``.npy`` headers, ``meta.json``, single pixels, gzip streams.

Structure-aware mutations parse a shard's tar leniently (:func:`parse_tar`), change it, and write it back with
sizes and header checksums fixed where the mutation does not target them, so the damage reaches the decoders
behind the checks that would otherwise stop it first. ``layer="tar"`` works on the tar inside a ``.tar.gz``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzz_cases import HOSTILE, SET_NAME, BaseSet

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


def read_regular(path: Path, follow: bool = False) -> bytes | None:
    """The bytes of a regular file (never a FIFO, which would block; a link only when ``follow``), else None."""
    try:
        return path.read_bytes() if path.is_file() and (follow or not path.is_symlink()) else None
    except OSError:
        return None


def _layers(ctx: Context, m: dict) -> tuple[Path, bytes, Callable[[bytes], bytes], Callable[[bytes], bytes]] | None:
    """(shard path, bytes of the chosen layer, encode back, identity) — the tar inside a .tar.gz for layer 'tar'."""
    path = ctx.shard(m["shard"])
    raw = read_regular(path)
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
        elif field == "payload":  # an object array whose pickle, if anything ever loaded it, would run a command
            payload = b"cos\nsystem\n(S'touch " + ctx.mark.encode() + b"'\ntR."  # pickle protocol 0, written by hand
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
    raw = read_regular(path)
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
