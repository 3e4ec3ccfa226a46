"""``lasium-data``: fetch, inspect and preview the image datasets (a thin layer over :mod:`lasium.data`).

Library modules are imported inside the commands: decoding workers re-import this script when they
start, and should not pay for anything they do not use.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import TYPE_CHECKING, Any

import click

from lasium.cli_support import OneLineGroup, one_line_warnings, user_errors
from lasium.errors import ConfigError

if TYPE_CHECKING:
    from lasium.data.cache import DecodedDataset


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """``28`` → (28, 28); ``32x48`` → (32, 48)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x×,]\s*(\d+))?\s*", text)
    if m is None:
        raise ConfigError(f"--image-size {text!r} is not a size; write 28 or 28x28 (height x width)")
    h = int(m[1])
    return (h, int(m[2]) if m[2] else h)


def parse_channels(text: str) -> int | None:
    return None if text == "auto" else int(text)


data_root_option = click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder holding omniglot/, celeba/, mini-imagenet/ (default: $LASIUM_DATA, else ~/.cache/lasium/data).",
)
cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where decoded arrays are cached (default: $LASIUM_CACHE, else ~/.cache/lasium/cache).",
)
image_size_option = click.option(
    "--image-size",
    default=None,
    help="Side (28) or HxW (28x28) of the stored images; default 28 (Omniglot, image folders), 84 (CelebA, "
    "mini-ImageNet).",
)
channels_option = click.option(
    "--channels",
    type=click.Choice(["auto", "1", "3"]),
    default="auto",
    show_default=True,
    help="1 = grayscale, 3 = RGB, auto = 1 if every image is grayscale.",
)


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Image datasets for lasium: download Omniglot, check and describe the datasets you have, preview real episodes.

    \b
    Examples:
      lasium-data download omniglot --data-root ~/data
      lasium-data info omniglot --data-root ~/data
      lasium-data info celeba --data-root ~/data            # ~/data/celeba/: img_align_celeba/ + the 3 lists
      lasium-data info celeba-attributes --data-root ~/data # the same files, attribute tasks
      lasium-data info mini-imagenet --data-root ~/data     # ~/data/mini-imagenet/: {train,val,test}/ or CSVs
      lasium-data info imagefolder:./my_images --image-size 32 --channels 3
      lasium-data preview omniglot --split test --ways 5 --shots 1 --queries 5 --out episodes.png

    \b
    DATASET:
      omniglot           the official zips (lasium-data download omniglot fetches them, md5-checked)
      celeba             CelebA identities: img_align_celeba/, identity_CelebA.txt, list_eval_partition.txt,
                         list_attr_celeba.txt from the CelebA site (never downloaded by lasium)
      celeba-attributes  the same files: 2-way attribute tasks (Hsu et al., ICLR 2019)
      mini-imagenet      Ravi & Larochelle split: {train,val,test}/<wnid>/*.jpg, or train/val/test.csv
                         (filename,label) + images/; pickled caches are refused
      imagefolder:PATH   PATH/<class>/<image>, or PATH/{train,val,test}/<class>/<image>
    docs/datasets.md describes each layout, its checks and the protocol sources.
    Environment: LASIUM_DATA = data root (holds omniglot/, celeba/, mini-imagenet/; may be read-only),
                 LASIUM_CACHE = where decoded arrays are cached (CelebA at 84x84: 4.3 GB, memory-mapped).
    """


@main.command()
@click.argument("dataset", type=click.Choice(["omniglot"]))
@data_root_option
@click.option(
    "--base-url", default=None, help="Mirror folder holding the two zips (default: the official GitHub repository)."
)
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Network timeout in seconds.")
@user_errors
def download(dataset: str, data_root: str | None, base_url: str | None, timeout: float) -> None:
    """Fetch images_background.zip and images_evaluation.zip into DATA_ROOT/omniglot.

    Each zip is md5-checked against the published sums and renamed into place only when it is
    complete and valid; zips already present with the right layout and counts are kept.

    \b
    Example:
      lasium-data download omniglot --data-root ~/data
      LASIUM_DATA=~/data lasium-data info omniglot
    """
    from lasium.data.download import OMNIGLOT_BASE_URL, download_omniglot

    results = download_omniglot(data_root, base_url=base_url or OMNIGLOT_BASE_URL, timeout=timeout)
    for r in results:
        extra = f" (md5 {r.md5})" if r.md5 else ""
        click.echo(f"{r.action:10s} {r.path}{extra}")


@main.command()
@click.argument("dataset")
@data_root_option
@cache_dir_option
@image_size_option
@channels_option
@click.option("--workers", type=int, default=None, help="Decoding processes on a cold cache (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@user_errors
@one_line_warnings
def info(
    dataset: str,
    data_root: str | None,
    cache_dir: str | None,
    image_size: str | None,
    channels: str,
    workers: int | None,
    as_json: bool,
) -> None:
    """Check DATASET and show its splits (classes, images, image shape), where its data and cache live, and
    what differs from the published release.

    DATASET is omniglot, celeba, celeba-attributes, mini-imagenet or imagefolder:PATH. The first call checks
    the files and decodes every image into the cache (seconds for Omniglot, minutes for CelebA); later calls
    read the cache. For celeba-attributes it also counts the attribute task pools of each split.

    \b
    Examples:
      lasium-data info omniglot --data-root ~/data
      lasium-data info celeba-attributes --data-root ~/data
      lasium-data info mini-imagenet --data-root ~/data --json
      lasium-data info imagefolder:./my_images --image-size 32x32
    """
    from lasium.data.cache import SPLITS
    from lasium.data.datasets import load_decoded
    from lasium.data.registry import ReleaseWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReleaseWarning)  # the release lines of the report say it
        data = load_decoded(
            dataset,
            data_root=data_root,
            cache_dir=cache_dir,
            image_size=parse_image_size(image_size),
            channels=parse_channels(channels),
            workers=workers,
        )
    splits: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        index, _, classes = data.split_indices(split)
        splits[split] = {
            "classes": len(classes),
            "images": int(len(index)),
            "fingerprint": data.fingerprints.get(split),
        }
    report: dict[str, Any] = {
        "dataset": data.name,
        "data": data.info.get("data"),
        "cache": data.info.get("cache_file"),
        "cache_status": data.info.get("cache"),
        "image_shape": list(data.image_shape),
        "split_seed": data.info.get("split_seed"),
        "split_source": data.info.get("split_source"),
        "layout": data.info.get("layout"),
        "preprocessing": data.info.get("preprocessing"),
        "release": data.info.get("release"),
        "task_kind": data.task_kind,
        "splits": splits,
        "unlabeled_fingerprint": data.fingerprints.get("unlabeled"),
    }
    if data.attributes is not None:
        report["attribute_tasks"] = attribute_report(data)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    shape = "x".join(str(s) for s in data.image_shape)
    click.echo(f"dataset        {data.name}")
    click.echo(f"data           {report['data']}")
    if report["layout"]:
        click.echo(f"layout         {report['layout']}")
    click.echo(f"cache          {report['cache']} ({report['cache_status']})")
    click.echo(f"preprocessing  {report['preprocessing']}")
    seed = report["split_seed"]
    source = report["split_source"] or "the train/val/test folders"
    click.echo(f"class split    {'seed ' + str(seed) if seed is not None else 'from ' + source}")
    for i, note in enumerate(report["release"] or []):
        click.echo(f"{'release' if i == 0 else '':15s}{note}")
    click.echo(f"{'split':6s} {'classes':>8s} {'images':>8s} {'image shape':>12s}  fingerprint")
    for split, s in splits.items():
        fp = (s["fingerprint"] or "-")[:16]
        click.echo(f"{split:6s} {s['classes']:8d} {s['images']:8d} {shape:>12s}  {fp}")
    if "attribute_tasks" in report:
        tasks = report["attribute_tasks"]
        click.echo(
            f"attribute tasks: 2-way, 3 of {tasks['attributes']} attributes fixed with their values vs all three "
            f"negated; a pool needs more than {tasks['min_exclusive']} images a side"
        )
        click.echo(f"{'split':6s} {'pools':>6s}  attributes (list_attr_celeba.txt columns)")
        for split, t in tasks["splits"].items():
            click.echo(f"{split:6s} {t['pools']:6d}  {t['columns']}")


def attribute_report(data: DecodedDataset) -> dict[str, Any]:
    """Per split: the attribute columns its tasks use and how many task pools they give."""
    from lasium.data.attributes import attribute_pools
    from lasium.data.cache import SPLITS
    from lasium.data.datasets import labeled_split

    table = data.attributes
    assert table is not None  # the caller asks only for a dataset with attributes
    out: dict[str, Any] = {"attributes": len(table.names), "min_exclusive": table.min_exclusive, "splits": {}}
    for split in SPLITS:
        if split not in table.split_ranges or not data.split_indices(split)[2]:
            continue
        images = labeled_split(data, split)
        assert images.attributes is not None  # a split of a dataset with attributes has them
        pools, _ = attribute_pools(images.attributes)
        out["splits"][split] = {"columns": table.describe_range(split), "pools": len(pools)}
    return out


@main.command()
@click.argument("dataset")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--ways", type=int, default=5, show_default=True)
@click.option("--shots", type=int, default=1, show_default=True)
@click.option("--queries", type=int, default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--count", type=int, default=4, show_default=True, help="Episodes to draw (indices 0..count-1).")
@click.option("--out", type=click.Path(dir_okay=False), default="episodes.png", show_default=True)
@data_root_option
@cache_dir_option
@image_size_option
@channels_option
@user_errors
@one_line_warnings
def preview(
    dataset: str,
    split: str,
    ways: int,
    shots: int,
    queries: int,
    seed: int,
    count: int,
    out: str,
    data_root: str | None,
    cache_dir: str | None,
    image_size: str | None,
    channels: str,
) -> None:
    """Draw real episodes and save them as one PNG: a row per class, support | query.

    The same (split, ways, shots, queries, seed) gives the same episodes as lasium-eval and the
    trainer's validation, so this shows exactly what they score on.

    \b
    Example:
      lasium-data preview omniglot --split test --ways 5 --shots 1 --queries 5 --count 3 --out test.png
    """
    from lasium.data.datasets import load_split
    from lasium.data.episodes import episode_sampler
    from lasium.previews import save_task_previews

    if count < 1:
        raise ConfigError("--count must be at least 1")
    images = load_split(
        dataset,
        split,
        data_root=data_root,
        cache_dir=cache_dir,
        image_size=parse_image_size(image_size),
        channels=parse_channels(channels),
    )
    sampler = episode_sampler(images, ways, shots, queries, seed)
    batch = sampler.tasks(0, count)
    titles = [f"{images.name} {split} episode {i} (seed {seed})" for i in range(count)]
    path = save_task_previews(list(batch), out, titles)
    click.echo(f"wrote {path} ({count} episodes, {ways}-way {shots}-shot, {queries} queries)")


if __name__ == "__main__":
    main()
