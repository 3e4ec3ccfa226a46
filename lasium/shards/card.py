"""A shard set's card: ``README.md`` and ``preview.png`` beside its ``manifest.json``.

A set travels between teams; its card says what it is without any tool: the source, strategy and
its parameters, the generator and its sha256, the number of tasks and bytes, the date, a picture of
four tasks, how to read it with stock WebDataset / h5py and with ``lasium-train``, and the sha256 of
the manifest (so a reader can check the manifest the card describes). Both files are optional
members of a set; ``verify`` and ``index`` ignore them (they are not shards).

The card is also a Hugging Face dataset card: a YAML metadata block (license, task categories, tags,
size category and a ``configs`` entry whose ``data_files`` name exactly the set's shards) above the text,
so ``datasets.load_dataset(<set folder>)`` reads the WebDataset shards and nothing else in the folder
(the ``<shard>.json`` sidecars, ``manifest.json``, ``preview.png``), locally or from the Hub
(metadata fields: https://huggingface.co/docs/hub/datasets-cards).

``lasium-gen`` writes the card when it writes the manifest; ``lasium-shards card DIR`` rewrites it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lasium.errors import ShardError
from lasium.shards.atomic import atomic_write_bytes
from lasium.shards.codecs import get_image_codec, image_codec_note
from lasium.shards.format import LASIUM_STRATEGIES, MANIFEST_NAME, Manifest, ShardEntry
from lasium.tasks import Task

README_NAME = "README.md"
PREVIEW_NAME = "preview.png"
CARD_FILES = (README_NAME, PREVIEW_NAME)
PREVIEW_TASKS = 4
# The set's terms follow its source images (or its generator's training data): the card says so with --license.
DEFAULT_LICENSE = "unknown"
# Hugging Face size categories (number of rows = tasks), from the Hub's dataset-card metadata.
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)
_FRONT_MATTER_RE = re.compile(r"\A---\n(.*?)\n---\n", re.S)
CARD_TAGS = ("few-shot-learning", "meta-learning", "unsupervised-meta-learning", "synthetic", "lasium")


def first_tasks(source: str | Path, count: int, start: int = 0, *, allow_partial: bool = False) -> list[Task]:
    """The first ``count`` tasks of a set (folder, manifest path or URL) with index >= ``start``; shards that
    end before ``start`` (by the manifest) are not read (``allow_partial``: see ``resolve_shard_urls``)."""
    from lasium.shards.locate import resolve_shard_urls
    from lasium.shards.reader import iter_shard_tasks

    urls, m = resolve_shard_urls(source, allow_partial=allow_partial)
    tasks: list[Task] = []
    for url, entry in zip(urls, m.shards if m else [None] * len(urls)):
        if entry is not None and entry.first_task + entry.num_tasks <= start:
            continue
        shard_tasks = iter_shard_tasks(
            url, layout=m.layout if m else None, entry=entry, container=m.container if m else None
        )
        try:
            for task in shard_tasks:
                if task.meta["index"] >= start:
                    tasks.append(task)
                if len(tasks) == count:
                    break
        finally:
            shard_tasks.close()
        if len(tasks) == count:
            break
    return tasks


def save_preview(tasks: Sequence[Task], out: str | Path) -> Path:
    """One PNG (written atomically): a grid per task, a row per class, support | query."""
    from lasium.previews import save_task_previews

    titles = [f"task {t.meta['index']}" + (f" ({t.meta['strategy']})" if "strategy" in t.meta else "") for t in tasks]
    return save_task_previews(tasks, out, titles)


def human_size(n: float) -> str:
    """Bytes in decimal units, e.g. ``26.12 kB`` (the card's and ``lasium-shards``' size lines)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n} B"


def shard_sizes(shards: Sequence[ShardEntry]) -> str:
    """The shards as runs of equal size, in file order: ``3 x 1000 + 1 x 200 tasks`` (``no shards`` when empty)."""
    runs: list[list[int]] = []
    for entry in shards:
        if runs and runs[-1][1] == entry.num_tasks:
            runs[-1][0] += 1
        else:
            runs.append([1, entry.num_tasks])
    return " + ".join(f"{count} x {size:,}" for count, size in runs) + " tasks" if runs else "no shards"


def _strategy_line(c: dict[str, Any], source: dict[str, Any] | None) -> str:
    strategy = str(c.get("strategy", "not recorded"))
    params = [f"{k} = {c[k]}" for k in ("sigma", "alpha", "epsilon", "latent_dim", "preset", "anchors") if k in c]
    if strategy in LASIUM_STRATEGIES:
        text = f"LASIUM-{strategy.upper()} ({LASIUM_STRATEGIES[strategy]})"
    else:  # a source without strategies labels its tasks with its name; its record may name the method
        record = source or {}
        text = str(record.get("method") or f"tasks drawn from its source ({record.get('kind', 'not recorded')})")
        text += ", no LASIUM strategy"
    return f"`{strategy}`: {text}" + (f"; {', '.join(params)}" if params else "")


def size_category(num_tasks: int) -> str:
    """The Hub's size category of a set of ``num_tasks`` tasks (rows)."""
    for bound, name in SIZE_CATEGORIES:
        if num_tasks < bound:
            return name
    return "n>1B"


def _yaml_str(text: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one: YAML 1.2 reads JSON)."""
    return json.dumps(str(text), ensure_ascii=True)


def card_metadata(m: Manifest, license: str = DEFAULT_LICENSE) -> str:
    """The card's YAML metadata block (between ``---`` lines), read by the Hub and by ``datasets``.

    A WebDataset set gets one ``default`` config whose ``train`` split lists exactly its shard files, so
    ``load_dataset(<folder>)`` (the ``webdataset`` builder) reads one row per task, with columns
    ``__key__``, ``support.npy``, ``query.npy``, ``meta.json`` (and ``latents.npy``); an HDF5 set gets the
    metadata without configs (stock ``datasets`` has no reader for its layout; read it with h5py).
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+-]*", license):
        raise ShardError(f"license {license!r} is not a license id; use a Hub license id such as mit, cc-by-4.0, other")
    lines = [
        "---",
        f"license: {_yaml_str(license)}",
        f"pretty_name: {_yaml_str(f'lasium task set {m.name}')}",
        "task_categories:",
        "- image-classification",
        "tags:",
        *[f"- {t}" for t in (*CARD_TAGS, "webdataset" if m.container == "wds" else "hdf5")],
        "size_categories:",
        f"- {size_category(m.num_tasks)}",
    ]
    if m.container == "wds" and m.shards:
        lines += [
            "configs:",
            "- config_name: default",
            "  data_files:",
            "  - split: train",
            "    path:",
            *[f"    - {_yaml_str(e.file)}" for e in m.shards],
        ]
    lines.append("---")
    return "\n".join(lines) + "\n"


def card_text(m: Manifest, manifest_sha256: str, date: str, license: str = DEFAULT_LICENSE) -> str:
    """The README.md of a set (pure function of the manifest, its sha256, the date and the license id)."""
    c = m.config
    total = sum(e.bytes for e in m.shards)
    h, w, ch = c["image_shape"]
    gen = m.generator
    gz = m.container == "wds" and m.compression == "gzip"
    suffix = ".tar.gz" if gz else ".tar" if m.container == "wds" else ".h5"
    first, last = (m.shards[0].file, m.shards[-1].file) if m.shards else ("", "")
    pattern = (
        f"{m.name}-{{{first[len(m.name) + 1 : len(m.name) + 7]}..{last[len(m.name) + 1 : len(m.name) + 7]}}}{suffix}"
        if m.shards
        else ""
    )
    if gen:
        gen_line = (
            f"{gen.get('name', gen.get('kind', '?'))} ({gen.get('kind', '?')}, latent {gen.get('latent_dim', '?')}), "
            f"weights sha256 `{gen.get('weights_sha256', 'not recorded')}`"
        )
    else:
        gen_line = "none (real images)"
    source = m.source
    source_line = (
        (
            f"{source.get('dataset', source.get('kind', '?'))} {source.get('split', '')}".strip()
            + (f", fingerprint `{source['fingerprint']}`" if "fingerprint" in source else "")
        )
        if source
        else "none"
    )
    support_shape = f"({c['ways']}, {c['shots']}, {h}, {w}, {ch}) uint8"
    query_shape = f"({c['ways']}, {c['queries']}, {h}, {w}, {ch}) uint8"
    codec = get_image_codec(m.image_codec)
    if m.container == "wds" and codec is not None:
        grey = ch == 1
        stock = f"""```python
import io, json, numpy as np, webdataset as wds
from PIL import Image

# {codec.description}: support and query are each one image, a row per class, a column per example
def images(data, k):  # -> (ways, k, {h}, {w}, {ch}) uint8
    a = np.asarray(Image.open(io.BytesIO(data)){'.convert("L")' if grey else '.convert("RGB")'})
    return a.reshape({c["ways"]}, {h}, k, {w}, {ch}).transpose(0, 2, 1, 3, 4)

for sample in wds.WebDataset("{pattern}", shardshuffle=False):
    support = images(sample["support.{codec.suffix}"], {c["shots"]})  # {support_shape}
    query = images(sample["query.{codec.suffix}"], {c["queries"]})    # {query_shape}
    meta = json.loads(sample["meta.json"])
```

Plain tar works too: `tar -t{"z" if gz else ""}vf {first}`."""
    elif m.container == "wds":
        stock = f"""```python
import io, json, numpy as np, webdataset as wds

# no .decode(): its default handlers unpickle; decode the three members yourself
for sample in wds.WebDataset("{pattern}", shardshuffle=False):
    support = np.load(io.BytesIO(sample["support.npy"]), allow_pickle=False)  # {support_shape}
    query = np.load(io.BytesIO(sample["query.npy"]), allow_pickle=False)      # {query_shape}
    meta = json.loads(sample["meta.json"])
```

With Hugging Face `datasets` (this card's metadata names the shards; one row per task):

```python
import datasets, numpy as np

ds = datasets.load_dataset("path/to/{m.name}", split="train")  # or "<org>/<name>" on the Hub; streaming=True
task = ds.with_format("numpy")[0]   # task["support.npy"]: {support_shape}, task["meta.json"]: dict
```

Plain tar works too: `tar -t{"z" if gz else ""}vf {first}`."""
    else:
        stock = f"""```python
import json, h5py

with h5py.File("{first}", "r") as f:
    support = f["support"][0]   # {support_shape}, task first_task + 0
    query = f["query"][0]       # {query_shape}
    meta = json.loads(f["meta"].asstr()[0])
```"""
    rows = [
        (
            "tasks",
            f"{m.num_tasks:,} ({c['ways']}-way, {c['shots']} support + {c['queries']} query images per class, "
            f"{h}x{w}x{ch} uint8{', with latents' if c.get('save_latents') else ''})",
        ),
        ("source", m.task_source or "not recorded"),
        ("strategy", _strategy_line(c, m.source)),
        ("generator", gen_line),
        ("image source", source_line),
        ("seed", str(c.get("seed"))),
        ("images", image_codec_note(m.image_codec) if m.container == "wds" else "raw uint8 datasets"),
        (
            "shards",
            f"{shard_sizes(m.shards)}, {m.container} ({suffix}{', gzip' if gz else ''}), files {first} … {last}",
        ),
        ("bytes", f"{total:,} ({human_size(total)}, {total / max(1, m.num_tasks):,.0f} per task)"),
        ("date", date),
        ("written by", f"lasium {m.tool_version}, task-shard format v{m.format_version}"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    lossy = (
        f"\n**Lossy images: this set stores its images as {codec.description}.**\n"
        if codec is not None and not codec.lossless
        else ""
    )
    config = json.dumps(c, indent=2, sort_keys=True)
    body = f"""# Task-shard set `{m.name}`

Synthetic few-shot tasks for unsupervised meta-learning, written by lasium
(LASIUM, Khodadadeh et al., ICLR 2021). Everything below comes from `manifest.json`.
{lossy}
| | |
|---|---|
{table}

![four tasks: one grid per task, a row per class, support | query](preview.png)

## Check it

`manifest.json` sha256: `{manifest_sha256}`

```
sha256sum manifest.json
lasium-shards verify .        # every shard's sha256 and every task (also: verify URL/manifest.json)
```

## Read it

With lasium:

```
lasium-train --shards path/or/URL/of/{m.name}/manifest.json --algo maml --out runs/{m.name}-maml
```

Without lasium (format spec: lasium's `docs/shard-format.md`):

{stock}

## Config

```json
{config}
```
"""
    return card_metadata(m, license) + "\n" + body


def card_license(readme: str | Path) -> str | None:
    """The license id in the metadata block of an existing card, else None."""
    try:
        text = Path(readme).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    block = _FRONT_MATTER_RE.match(text)
    found = re.search(r'^license:\s*"?([A-Za-z0-9][A-Za-z0-9.+-]*)"?\s*$', block.group(1), re.M) if block else None
    return found.group(1) if found else None


def write_card(
    folder: str | Path, *, tasks: Sequence[Task] | None = None, license: str | None = None
) -> tuple[Path, Path]:
    """Write ``README.md`` and ``preview.png`` into the set in ``folder`` from its manifest; return both paths.

    ``tasks``: the tasks to picture (default: the first four of the set); ``license``: the Hub license id
    of the card's metadata (default: the one of the card being rewritten, else ``unknown``: the terms of the
    source images apply). The date is the manifest's
    modification date (UTC), so rewriting a card does not change it.
    """
    from lasium.shards.manifest import read_manifest

    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ShardError(
            f"no {MANIFEST_NAME} in {folder}; a card describes a "
            f"complete set (run 'lasium-shards index {folder}' first)"
        )
    raw = path.read_bytes()
    m = read_manifest(folder)
    if tasks is None:
        tasks = first_tasks(folder, PREVIEW_TASKS)
    if not tasks:
        raise ShardError(f"the set in {folder} holds no tasks to picture")
    date = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d")
    picture = save_preview(tasks, folder / PREVIEW_NAME)
    readme = folder / README_NAME
    license = license or card_license(readme) or DEFAULT_LICENSE
    atomic_write_bytes(readme, card_text(m, hashlib.sha256(raw).hexdigest(), date, license).encode())
    return readme, picture
