"""A set is a Hugging Face dataset: its card's metadata names exactly its shards, so ``datasets.load_dataset`` on
the folder (and in streaming mode) and a stock ``webdataset`` reader give every task, plain and gzip; the sidecars,
manifest, card and preview beside them are not read as data."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import yaml
from cli_helpers import one_line_error
from click.testing import CliRunner
from shards_helpers import write_set

from lasium.shards import iter_tasks
from lasium.shards.card import card_license, size_category, write_card
from lasium.shards.cli import main

datasets = pytest.importorskip("datasets")


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def _set(tmp_path, compression: str, latents: bool = False):
    folder = tmp_path / f"set-{compression}"
    folder.mkdir()
    write_set(folder, "wds", compression=compression, latents=latents)
    write_card(folder)
    return folder


@pytest.mark.parametrize("compression", ["auto", "gzip"])
def test_card_metadata_is_a_dataset_card_naming_exactly_the_shards(tmp_path, compression):
    folder = _set(tmp_path, compression)
    meta = _front_matter((folder / "README.md").read_text())
    suffix = ".tar.gz" if compression == "gzip" else ".tar"
    shards = sorted(p.name for p in folder.iterdir() if p.name.endswith(suffix))
    assert len(shards) == 3 and {p.name for p in folder.iterdir()} > {f"{s}.json" for s in shards}  # sidecars there
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": shards}]}]
    assert meta["license"] == "unknown" and meta["task_categories"] == ["image-classification"]
    assert {"few-shot-learning", "meta-learning"} <= set(meta["tags"]) and meta["size_categories"] == ["n<1K"]
    from huggingface_hub import DatasetCardData

    card = DatasetCardData(**meta)  # the Hub's own card model accepts the block
    assert card.license == "unknown" and card.configs == meta["configs"]


@pytest.mark.parametrize("compression", ["auto", "gzip"])
@pytest.mark.parametrize("streaming", [False, True])
def test_load_dataset_on_the_folder_gives_every_task(tmp_path, compression, streaming):
    folder = _set(tmp_path, compression, latents=compression == "gzip")
    want = list(iter_tasks(folder))
    ds = datasets.load_dataset(str(folder), split="train", streaming=streaming, cache_dir=str(tmp_path / "hf"))
    rows = list(ds.with_format("numpy")) if streaming else list(ds.with_format("numpy"))
    assert [r["__key__"] for r in rows] == [f"task-{t.meta['index']:09d}" for t in want]
    for row, task in zip(rows, want):
        assert np.array_equal(row["support.npy"], task.support) and row["support.npy"].shape == task.support.shape
        assert np.array_equal(row["query.npy"], task.query) and row["query.npy"].shape == task.query.shape
        assert {k: np.asarray(v).tolist() for k, v in row["meta.json"].items()} == task.meta
        if task.latents is not None:
            assert np.array_equal(row["latents.npy"].astype(np.float16), task.latents)


@pytest.mark.parametrize("compression", ["auto", "gzip"])
def test_stock_webdataset_reads_the_cards_pattern_and_not_the_sidecars(tmp_path, compression):
    import webdataset as wds

    folder = _set(tmp_path, compression)
    text = (folder / "README.md").read_text()
    pattern = text.split('wds.WebDataset("', 1)[1].split('"', 1)[0]
    keys = []
    for sample in wds.WebDataset(str(folder / pattern), shardshuffle=False):
        assert set(sample) == {"__key__", "__url__", "__local_path__", "support.npy", "query.npy", "meta.json"} - (
            set() if "__local_path__" in sample else {"__local_path__"}
        )
        np.load(io.BytesIO(sample["support.npy"]), allow_pickle=False)
        keys.append(json.loads(sample["meta.json"])["index"])
    assert keys == list(range(7))


def test_license_option_and_rewrite_keep_it(tmp_path):
    folder = _set(tmp_path, "auto")
    assert CliRunner().invoke(main, ["card", str(folder), "--license", "cc-by-4.0"]).exit_code == 0
    assert _front_matter((folder / "README.md").read_text())["license"] == "cc-by-4.0"
    assert CliRunner().invoke(main, ["card", str(folder)]).exit_code == 0  # a rewrite keeps the license
    assert card_license(folder / "README.md") == "cc-by-4.0"
    bad = CliRunner().invoke(main, ["card", str(folder), "--license", "MIT: see\nLICENSE"])
    assert "is not a license id" in one_line_error(bad)


def test_hdf5_card_has_metadata_without_configs(tmp_path):
    write_set(tmp_path, "hdf5")
    meta = _front_matter(write_card(tmp_path)[0].read_text())
    assert "configs" not in meta and meta["tags"][:2] == ["few-shot-learning", "meta-learning"]


@pytest.mark.parametrize(("n", "want"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (2_500_000, "1M<n<10M")])
def test_size_category(n, want):
    assert size_category(n) == want
