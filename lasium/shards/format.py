"""The task-shard format v1: names, the manifest record and the expected task layout.

The spec in prose is ``docs/shard-format.md``; this module is its executable form. Everything here is
pure data handling (no file I/O) so writer, reader, verifier and CLI agree on one definition.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lasium.errors import ShardError

FORMAT_NAME = "lasium-task-shards"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SIDECAR_SUFFIX = ".json"

# container name -> shard file extension
CONTAINERS: dict[str, str] = {"wds": ".tar", "hdf5": ".h5"}
# Compression of a set's shards. WebDataset: "gzip" makes <name>-NNNNNN.tar.gz (the whole tar gzipped),
# "none" a plain .tar. HDF5: gzip (deflate) or lzf filters inside the .h5 file, whose name does not change.
COMPRESSIONS = ("gzip", "none")  # what lasium-gen --compression offers, for either container
HDF5_COMPRESSIONS = ("gzip", "lzf", "none")  # what an HDF5 set may hold
WDS_GZIP_SUFFIX = ".tar.gz"
# The compression a set has when its config records none (the writer's and lasium-gen's default): WebDataset plain
# .tar, HDF5 the gzip filter.
DEFAULT_COMPRESSION: dict[str, str] = {"wds": "none", "hdf5": "gzip"}

# What kind of tasks a set holds. The config's "source" records the kind of task source that made them
# (lasium-gen --source: generator, real, umtra, cactus, ...); "generator" means LASIUM, images decoded from a
# generative model's latents. The config's "strategy" labels the tasks (also in each task's meta.json): a LASIUM
# strategy, or for sources without strategies their own name.
GENERATOR_SOURCE = "generator"
LASIUM_STRATEGIES: dict[str, str] = {
    "n": "Gaussian noise around each anchor",
    "ro": "interpolation towards random out-of-class latents",
    "oc": "interpolation towards the other classes' anchors",
}
"""The LASIUM sampling strategies (Khodadadeh et al., ICLR 2021) by the name a set config records, and what each does:
the one home of their descriptions (the card of a set, lasium-gen's registry and --help)."""

REQUIRED_CONFIG_KEYS = (
    "ways",
    "shots",
    "queries",
    "image_shape",
    "seed",
    "tasks_per_shard",
    "num_tasks",
    "save_latents",
)

# How a WebDataset task stores its images (lasium.shards.codecs): the codec's name, as a set's config records it
# (``image_codec``; absent = npy), and the suffix of its support/query members. HDF5 sets hold raw arrays only.
DEFAULT_IMAGE_CODEC = "npy"
IMAGE_CODEC_SUFFIXES: dict[str, str] = {"npy": "npy", "png": "png", "webp": "webp", "jpeg": "jpg"}
IMAGE_MEMBERS = tuple(f"{split}.{suffix}" for suffix in IMAGE_CODEC_SUFFIXES.values() for split in ("support", "query"))

# The only tar members / HDF5 datasets a reader decodes; anything else is refused (see README "Safety").
WDS_MEMBERS = IMAGE_MEMBERS + ("latents.npy", "meta.json")
HDF5_DATASETS = ("support", "query", "latents", "meta")

MAX_TASKS = 10**9  # task keys have 9 digits
MAX_SHARDS = 10**6  # shard numbers have 6 digits

# Names are matched whole (``fullmatch``) and in ASCII only: a name read from a manifest, sidecar or card is a
# plain file name inside the set, never a path, URL, ``pipe:`` command, ``~``, or a Unicode look-alike.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
SHARD_FILE_RE = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)-(?P<index>[0-9]{6})\.(?P<ext>tar|tar\.gz|h5)", re.ASCII
)
TASK_KEY_RE = re.compile(r"task-([0-9]{9})", re.ASCII)


MAX_JSON_DEPTH = 64  # nesting deeper than this in a set's JSON is refused (the format needs 4 levels)


def parse_json(data: str | bytes) -> Any:
    """JSON read from a set's file (manifest, sidecar, ``meta.json``, HDF5 attribute), as :func:`json.loads` parses
    it, but every failure, including nesting too deep to parse or to handle, is a :class:`ValueError`."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return value


def recorded_task_source(config: dict[str, Any]) -> str | None:
    """The kind of task source a set config records (``config["source"]``), else None.

    A config without ``source`` (a set written by hand or by another tool) is read from its ``strategy``: a LASIUM
    strategy means ``generator``; ``real``, ``umtra`` and ``cactus`` label their tasks with their own name.
    """
    kind = config.get("source")
    if isinstance(kind, str) and kind:
        return kind
    strategy = config.get("strategy")
    if not isinstance(strategy, str):  # a set's JSON may hold anything here (a list or an object is not a name)
        return None
    if strategy in LASIUM_STRATEGIES:
        return GENERATOR_SOURCE
    if strategy in ("real", "umtra", "cactus"):
        return strategy
    return None


def task_key(index: int) -> str:
    """The WebDataset key of task ``index``: ``task-`` and 9 digits."""
    return f"task-{index:09d}"


def check_name(name: object) -> str:
    """Validate a shard-set name (it becomes part of every file name)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ShardError(
            f"invalid shard-set name {name!r}: use letters, digits, '_', '-' or '.', not starting with '.' or '-'"
        )
    return name


def check_container(container: object) -> str:
    if not isinstance(container, str) or container not in CONTAINERS:
        raise ShardError(f"unknown container {container!r}: use one of {', '.join(CONTAINERS)}")
    return container


def check_compression(compression: str | None, container: str) -> str:
    """Normalise a compression name for ``container`` (None means "none")."""
    value = "none" if compression is None else str(compression)
    allowed = HDF5_COMPRESSIONS if container == "hdf5" else COMPRESSIONS
    if value not in allowed:
        raise ShardError(f"unknown compression {compression!r} for {container} shards: use {' or '.join(allowed)}")
    return value


def shard_file_name(name: str, shard_index: int, container: str, compression: str | None = None) -> str:
    """``<name>-000042.tar`` (wds), ``<name>-000042.tar.gz`` (wds, gzip) or ``<name>-000042.h5`` (hdf5)."""
    check_name(name)
    if not 0 <= shard_index < MAX_SHARDS:
        raise ShardError(f"shard index {shard_index} out of range 0..{MAX_SHARDS - 1}")
    suffix = CONTAINERS[check_container(container)]
    if container == "wds" and check_compression(compression, container) == "gzip":
        suffix = WDS_GZIP_SUFFIX
    return f"{name}-{shard_index:06d}{suffix}"


def parse_shard_file_name(file_name: str) -> tuple[str, int, str] | None:
    """``(name, shard index, container)`` for a shard file name, else None (temp files, sidecars, ...)."""
    m = SHARD_FILE_RE.fullmatch(file_name) if isinstance(file_name, str) else None
    if not m:
        return None
    container = "hdf5" if m["ext"] == "h5" else "wds"
    return m["name"], int(m["index"]), container


def file_compression(file_name: str) -> str:
    """How a WebDataset shard file is compressed, from its name: ``gzip`` for ``.tar.gz``, else ``none``."""
    return "gzip" if file_name.endswith(WDS_GZIP_SUFFIX) else "none"


def container_of(url: str) -> str:
    """The container of a shard URL or path, from its extension (for ``pipe:``, the last word naming a shard)."""
    words = url[len("pipe:") :].split() if url.startswith("pipe:") else [url]
    for word in reversed(words):
        tail = word.strip("'\"").split("?")[0]
        if tail.endswith(".tar") or tail.endswith(WDS_GZIP_SUFFIX):
            return "wds"
        if tail.endswith(".h5") or tail.endswith(".hdf5"):
            return "hdf5"
    raise ShardError(
        f"cannot tell the container of {url!r}: shard names end in .tar or .tar.gz (WebDataset) or .h5 (HDF5)"
    )


def _json_default(obj: Any) -> Any:
    # Producers often hand over numpy scalars/arrays (image ids, class indices); store them as plain JSON.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


# One encoder instance: json.dumps with options builds a new encoder per call, which shows on the hot path.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the byte-stable form used for meta.json and comparisons."""
    return _CANONICAL.encode(obj)


@dataclass(frozen=True)
class ShardEntry:
    """One shard in the manifest: file name (relative to the set's folder), task range, size, checksum."""

    file: str
    first_task: int
    num_tasks: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "first_task": self.first_task,
            "num_tasks": self.num_tasks,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str) -> ShardEntry:
        try:
            entry = cls(str(d["file"]), int(d["first_task"]), int(d["num_tasks"]), int(d["bytes"]), str(d["sha256"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ShardError(f"{where}: bad shard entry {d!r} ({exc}); rebuild it with 'lasium-shards index'") from None
        if not isinstance(d.get("file"), str) or parse_shard_file_name(entry.file) is None:
            raise ShardError(
                f"{where}: refusing shard entry {d.get('file')!r}: a shard file is a plain name inside the set, "
                "<name>-NNNNNN.tar, .tar.gz or .h5 (letters, digits, '_', '-', '.'; no path, URL or command)"
            )
        if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256):
            raise ShardError(f"{where}: bad shard entry for {entry.file!r} (sha256 must be 64 hex digits)")
        if entry.first_task < 0 or entry.num_tasks < 0 or entry.bytes < 0:
            raise ShardError(f"{where}: bad shard entry for {entry.file!r} (negative task range or size)")
        return entry


def check_header(header: Any) -> dict[str, Any]:
    """Validate ``{"config": {...}, "generator": {...}|None, "source": {...}|None}``; return a JSON-clean copy."""
    if not isinstance(header, dict) or not isinstance(header.get("config"), dict):
        raise ShardError("shard header must be a dict with a 'config' dict (and optional 'generator', 'source')")
    try:
        clean = json.loads(
            canonical_json(
                {"config": header["config"], "generator": header.get("generator"), "source": header.get("source")}
            )
        )
    except (TypeError, ValueError) as exc:
        raise ShardError(f"shard header is not JSON-serializable: {exc}") from None
    config = clean["config"]
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in config]
    if missing:
        raise ShardError(f"shard config lacks {', '.join(missing)}; it must hold {', '.join(REQUIRED_CONFIG_KEYS)}")
    for key in ("ways", "shots", "queries", "tasks_per_shard"):
        if not isinstance(config[key], int) or isinstance(config[key], bool) or config[key] < 1:
            raise ShardError(f"shard config {key}={config[key]!r} must be a positive integer")
    if (
        not isinstance(config["num_tasks"], int)
        or isinstance(config["num_tasks"], bool)
        or not 0 <= config["num_tasks"] <= MAX_TASKS
    ):
        raise ShardError(f"shard config num_tasks={config['num_tasks']!r} must be an integer in 0..{MAX_TASKS}")
    shape = config["image_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)):
        raise ShardError(f"shard config image_shape={shape!r} must be [H, W, C] with positive integers")
    if not isinstance(config["save_latents"], bool):
        raise ShardError(f"shard config save_latents={config['save_latents']!r} must be true or false")
    codec = config.get("image_codec", DEFAULT_IMAGE_CODEC)
    if not isinstance(codec, str) or codec not in IMAGE_CODEC_SUFFIXES:
        raise ShardError(
            f"shard config image_codec={codec!r} is not an image codec this lasium reads "
            f"({', '.join(IMAGE_CODEC_SUFFIXES)}); upgrade lasium or regenerate the set"
        )
    if codec != DEFAULT_IMAGE_CODEC and config.get("format", "wds") != "wds":
        raise ShardError(f"shard config image_codec={codec!r} applies to WebDataset sets; HDF5 sets hold raw arrays")
    for key in ("generator", "source"):
        if clean[key] is not None and not isinstance(clean[key], dict):
            raise ShardError(f"shard header {key} must be a dict or null, got {type(clean[key]).__name__}")
    return clean


@dataclass(frozen=True)
class TaskLayout:
    """The array shapes every task of a set must have, derived from the header.

    ``latents``: True = every task carries latents, False = none does, None = either (no manifest known).
    ``latent_dim`` None = not known in advance (only the leading axes are checked).
    """

    ways: int
    shots: int
    queries: int
    image_shape: tuple[int, int, int]
    latents: bool | None = None
    latent_dim: int | None = None
    image_codec: str = DEFAULT_IMAGE_CODEC  # how support/query members are stored (lasium.shards.codecs)

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> TaskLayout:
        c = header["config"]
        gen = header.get("generator") or {}
        dim = c.get("latent_dim", gen.get("latent_dim"))
        height, width, channels = (int(s) for s in c["image_shape"])  # [H, W, C] (check_header)
        return cls(
            int(c["ways"]),
            int(c["shots"]),
            int(c["queries"]),
            (height, width, channels),
            bool(c["save_latents"]),
            int(dim) if isinstance(dim, int) else None,
            str(c.get("image_codec", DEFAULT_IMAGE_CODEC)),
        )

    def support_shape(self) -> tuple[int, ...]:
        return (self.ways, self.shots) + self.image_shape

    def query_shape(self) -> tuple[int, ...]:
        return (self.ways, self.queries) + self.image_shape

    def check_arrays(
        self, support: np.ndarray, query: np.ndarray, latents: np.ndarray | None, where: str, lead: tuple[int, ...] = ()
    ) -> None:
        """Raise :class:`ShardError` naming ``where`` when arrays break the layout (``lead`` = batch axes)."""
        want_s, want_q = lead + self.support_shape(), lead + self.query_shape()
        if support.dtype != np.uint8 or tuple(support.shape) != want_s:
            raise ShardError(f"{where}: support is {support.dtype}{tuple(support.shape)}, expected uint8{want_s}")
        if query.dtype != np.uint8 or tuple(query.shape) != want_q:
            raise ShardError(f"{where}: query is {query.dtype}{tuple(query.shape)}, expected uint8{want_q}")
        if latents is None:
            if self.latents:
                raise ShardError(f"{where}: latents missing but the set was written with save_latents=true")
            return
        if self.latents is False:
            raise ShardError(f"{where}: has latents but the set was written with save_latents=false")
        want = lead + (self.ways, self.shots + self.queries)
        if latents.dtype != np.float16 or latents.ndim != len(want) + 1 or tuple(latents.shape[:-1]) != want:
            raise ShardError(
                f"{where}: latents are {latents.dtype}{tuple(latents.shape)}, expected float16{want + ('D',)}"
            )
        if self.latent_dim is not None and latents.shape[-1] != self.latent_dim:
            raise ShardError(f"{where}: latents have D={latents.shape[-1]}, expected latent_dim {self.latent_dim}")


def expected_shard_tasks(config: dict[str, Any], shard_index: int) -> tuple[int, int]:
    """``(first_task, num_tasks)`` of shard ``shard_index``: shard s holds tasks s·tps … min((s+1)·tps, total)."""
    tps, total = int(config["tasks_per_shard"]), int(config["num_tasks"])
    first = shard_index * tps
    return first, max(0, min(tps, total - first))


@dataclass
class Manifest:
    """A shard set's ``manifest.json``: format, tool version, header, shard list. ``root`` = its folder."""

    container: str
    name: str
    config: dict[str, Any]
    generator: dict[str, Any] | None
    source: dict[str, Any] | None
    shards: list[ShardEntry] = field(default_factory=list)
    tool_version: str = ""
    format_version: int = FORMAT_VERSION
    root: Path | None = None
    url: str | None = None  # where the manifest was read from, when that is a URL (http(s)://, s3://, ...)

    @property
    def num_tasks(self) -> int:
        return sum(e.num_tasks for e in self.shards)

    @property
    def header(self) -> dict[str, Any]:
        return {"config": self.config, "generator": self.generator, "source": self.source}

    @property
    def layout(self) -> TaskLayout:
        return TaskLayout.from_header(self.header)

    @property
    def task_source(self) -> str | None:
        """The kind of task source that made the set (:func:`recorded_task_source`), None if not recorded."""
        return recorded_task_source(self.config)

    @property
    def image_codec(self) -> str:
        """How the set's tasks store their images (``npy``, ``png``, ``webp``, ``jpeg``; lasium.shards.codecs)."""
        return str(self.config.get("image_codec", DEFAULT_IMAGE_CODEC))

    @property
    def compression(self) -> str:
        """``gzip`` or ``none`` for WebDataset sets (from the shard file names; ``mixed`` if they differ);
        for HDF5 sets the filter the config records (``gzip`` when it records none: the writer's default)."""
        if self.container == "hdf5":
            return str(self.config.get("compression", "gzip"))
        kinds = {file_compression(e.file) for e in self.shards}
        return kinds.pop() if len(kinds) == 1 else "none" if not kinds else "mixed"

    def shard_path(self, entry: ShardEntry) -> Path:
        return (self.root or Path(".")) / entry.file

    def shard_url(self, entry: ShardEntry) -> str:
        """Where to read ``entry``: next to the manifest (a URL when the manifest came from one, else a path)."""
        if self.url is None:
            return str(self.shard_path(entry))
        return sibling_url(self.url, entry.file)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "container": self.container,
            "name": self.name,
            "config": self.config,
            "generator": self.generator,
            "source": self.source,
            "image_codec": self.image_codec,
            "shards": [e.to_dict() for e in self.shards],
            "num_tasks": self.num_tasks,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str, root: Path | None = None) -> Manifest:
        if not isinstance(d, dict) or d.get("format") != FORMAT_NAME:
            raise ShardError(f"{where} is not a {FORMAT_NAME} manifest (field 'format' missing or different)")
        version = d.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise ShardError(f"{where}: bad format_version {version!r}")
        if version > FORMAT_VERSION:
            raise ShardError(
                f"{where} uses format version {version}; this lasium reads version {FORMAT_VERSION}: upgrade lasium"
            )
        header = check_header(d)
        shards = d.get("shards")
        if not isinstance(shards, list):
            raise ShardError(f"{where}: 'shards' must be a list")
        m = cls(
            check_container(d.get("container")),
            check_name(d.get("name")),
            header["config"],
            header["generator"],
            header["source"],
            [ShardEntry.from_dict(s, where) for s in shards],
            str(d.get("tool_version", "")),
            version,
            root,
        )
        if "image_codec" in d and d["image_codec"] != m.image_codec:
            raise ShardError(
                f"{where}: image_codec {d['image_codec']!r} differs from the config's ({m.image_codec!r}); "
                "the manifest is damaged, rebuild it with 'lasium-shards index'"
            )
        for entry in m.shards:
            name, _, container = parse_shard_file_name(entry.file) or ("", 0, "")
            if (name, container) != (m.name, m.container):
                raise ShardError(
                    f"{where}: shard {entry.file!r} does not belong to set {m.name!r} ({m.container}); "
                    "refusing the manifest"
                )
        if "num_tasks" in d and d["num_tasks"] != m.num_tasks:
            raise ShardError(f"{where}: num_tasks {d['num_tasks']} differs from the sum over shards ({m.num_tasks})")
        return m


def sibling_url(url: str, file: str) -> str:
    """The URL of ``file`` in the same folder as ``url`` (query strings and fragments dropped)."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    return base.rsplit("/", 1)[0] + "/" + file


def task_ranges_report(entries: list[ShardEntry], num_tasks: int | None = None) -> tuple[list[str], list[str]]:
    """Gaps and overlaps in the task ranges of ``entries`` (and up to ``num_tasks`` when given)."""
    gaps: list[str] = []
    overlaps: list[str] = []
    pos = 0
    prev: ShardEntry | None = None
    for e in sorted(entries, key=lambda e: (e.first_task, e.file)):
        if e.first_task > pos:
            gaps.append(f"tasks {pos}..{e.first_task - 1}")
        elif e.first_task < pos and prev is not None:
            overlaps.append(f"{prev.file} and {e.file} both hold task {e.first_task}")
        pos = max(pos, e.first_task + e.num_tasks)
        prev = e
    if num_tasks is not None and pos < num_tasks:
        gaps.append(f"tasks {pos}..{num_tasks - 1}")
    return gaps, overlaps
