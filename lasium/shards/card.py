"""A shard set's card: ``README.md`` and ``preview.png`` beside its ``manifest.json``.

A set travels between teams; its card says what it is without any tool: the source, strategy and
its parameters, the generator and its sha256, the number of tasks and bytes, the date, a picture of
four tasks, how to read it with stock WebDataset / h5py and with ``lasium-train``, and the sha256 of
the manifest (so a reader can check the manifest the card describes). Both files are optional
members of a set; ``verify`` and ``index`` ignore them (they are not shards).

``lasium-gen`` writes the card when it writes the manifest; ``lasium-shards card DIR`` rewrites it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lasium.errors import ShardError
from lasium.shards.atomic import atomic_write_bytes
from lasium.shards.format import LASIUM_STRATEGIES, MANIFEST_NAME, Manifest, ShardEntry
from lasium.tasks import Task

README_NAME = "README.md"
PREVIEW_NAME = "preview.png"
CARD_FILES = (README_NAME, PREVIEW_NAME)
PREVIEW_TASKS = 4


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


def card_text(m: Manifest, manifest_sha256: str, date: str) -> str:
    """The README.md of a set (pure function of the manifest, its sha256 and the date)."""
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
    if m.container == "wds":
        stock = f"""```python
import io, json, numpy as np, webdataset as wds

# no .decode(): its default handlers unpickle; decode the three members yourself
for sample in wds.WebDataset("{pattern}", shardshuffle=False):
    support = np.load(io.BytesIO(sample["support.npy"]), allow_pickle=False)  # {support_shape}
    query = np.load(io.BytesIO(sample["query.npy"]), allow_pickle=False)      # {query_shape}
    meta = json.loads(sample["meta.json"])
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
        (
            "shards",
            f"{shard_sizes(m.shards)}, {m.container} ({suffix}{', gzip' if gz else ''}), files {first} … {last}",
        ),
        ("bytes", f"{total:,} ({human_size(total)}, {total / max(1, m.num_tasks):,.0f} per task)"),
        ("date", date),
        ("written by", f"lasium {m.tool_version}, task-shard format v{m.format_version}"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    config = json.dumps(c, indent=2, sort_keys=True)
    return f"""# Task-shard set `{m.name}`

Synthetic few-shot tasks for unsupervised meta-learning, written by lasium
(LASIUM, Khodadadeh et al., ICLR 2021). Everything below comes from `manifest.json`.

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

Without lasium (format spec: lasium's `shards/README.md`):

{stock}

## Config

```json
{config}
```
"""


def write_card(folder: str | Path, *, tasks: Sequence[Task] | None = None) -> tuple[Path, Path]:
    """Write ``README.md`` and ``preview.png`` into the set in ``folder`` from its manifest; return both paths.

    ``tasks``: the tasks to picture (default: the first four of the set). The date is the manifest's
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
    atomic_write_bytes(readme, card_text(m, hashlib.sha256(raw).hexdigest(), date).encode())
    return readme, picture
