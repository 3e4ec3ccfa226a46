"""Task mixtures in lasium-train: --shards A:0.7 --shards B:0.3 (weights, parsing, proportions, resume, run config)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lasium.errors import ConfigError
from lasium.train.config import TrainConfig
from lasium.train.mixture import open_mixture, split_weight
from lasium.train.shard_access import open_shard_set
from lasium.train.streaming import TaskStream, check_batch, make_loader
from lasium.train.synthetic import write_synthetic_shards
from lasium.train.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")
SHAPE = (16, 16, 1)


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """A: 4 shards × 6 tasks; B: 3 shards × 4 tasks (B holds a third of A's tasks... 12 vs 24)."""
    root = tmp_path_factory.mktemp("mix")
    write_synthetic_shards(root / "A", shards=4, tasks_per_shard=6, image_shape=SHAPE, seed=1, name="a")
    write_synthetic_shards(
        root / "B", container="hdf5", shards=3, tasks_per_shard=4, image_shape=SHAPE, seed=2, name="b"
    )
    return {"A": root / "A", "B": root / "B"}


def take(stream: TaskStream, n: int) -> list[dict]:
    return [check_batch(b) for b in itertools.islice(iter(make_loader(stream)), n)]


def from_a(batches: list[dict]) -> list[bool]:
    return ["/A/" in url for b in batches for url in b["shards"]]


@pytest.mark.parametrize(
    "text, want",
    [
        ("shards/a:0.5", ("shards/a", 0.5)),
        ("shards/a:2", ("shards/a", 2.0)),
        ("shards/a:1e-1", ("shards/a", 0.1)),
        ("shards/a:.25", ("shards/a", 0.25)),
        ("shards/a", ("shards/a", None)),
        ("http://host:8080", ("http://host:8080", None)),
        ("https://host:8443/sets/ro/manifest.json", ("https://host:8443/sets/ro/manifest.json", None)),
        ("https://host:8443/sets/ro/manifest.json:3", ("https://host:8443/sets/ro/manifest.json", 3.0)),
        ("pipe:aws s3 cp s3://b/x-{000000..000009}.tar -", ("pipe:aws s3 cp s3://b/x-{000000..000009}.tar -", None)),
        ("pipe:aws s3 cp s3://b/x.tar -:0.3", ("pipe:aws s3 cp s3://b/x.tar -", 0.3)),
        ("file:/data/x-000000.tar", ("file:/data/x-000000.tar", None)),
        ("C:\\shards\\ro", ("C:\\shards\\ro", None)),
        ("shards/a:b", ("shards/a:b", None)),
    ],
)
def test_only_a_trailing_number_is_a_weight(text, want):
    assert split_weight(text) == want


def test_an_existing_path_with_a_colon_keeps_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "set:2").mkdir()
    assert split_weight("set:2") == ("set:2", None)
    assert split_weight("set:3") == ("set", 3.0)


@pytest.mark.parametrize("text", ["a:0", "a:-1", "a:+0.0", "a:1e999"])
def test_weights_must_be_positive_and_finite(text):
    with pytest.raises(ConfigError, match="positive number"):
        split_weight(text)


def test_weights_for_all_or_none(sets):
    with pytest.raises(ConfigError, match="give a weight to every --shards source or to none"):
        open_mixture([f"{sets['A']}:0.5", str(sets["B"])])


def test_weighted_proportions_hold_within_sampling_error(sets):
    shard_set, mixture = open_mixture([f"{sets['A']}:0.8", f"{sets['B']}:0.2"])
    assert mixture.weighted and mixture.probabilities().tolist() == pytest.approx([0.8, 0.2])
    n = 3000
    batches = take(TaskStream(shard_set, 10, seed=4, shuffle_buffer=4, mixture=mixture), n // 10)
    share = float(np.mean(from_a(batches)))
    sigma = (0.8 * 0.2 / n) ** 0.5
    assert abs(share - 0.8) < 4 * sigma, share  # A alone holds 2/3 of the tasks: pooling would give 0.667
    # Both sources keep their own shuffled rounds: every task of each appears.
    seen_b = {bytes(b["support"][i].numpy()) for b in batches for i, u in enumerate(b["shards"]) if "/B/" in u}
    assert len(seen_b) == 12


def test_weighted_mixture_with_workers_is_reproducible_and_resumes_exactly(sets):
    shard_set, mixture = open_mixture([f"{sets['A']}:1", f"{sets['B']}:1"])
    kw = dict(seed=5, shuffle_buffer=4, workers=2, mixture=mixture)
    full = take(TaskStream(shard_set, 3, **kw), 9)
    again = take(TaskStream(shard_set, 3, **kw), 9)
    rest = take(TaskStream(shard_set, 3, start=4, **kw), 5)
    for a, b in zip(full, again):
        assert torch.equal(a["support"], b["support"]) and a["shards"] == b["shards"]
    for a, b in zip(full[4:], rest):
        assert (
            torch.equal(a["support"], b["support"]) and torch.equal(a["perm"], b["perm"]) and a["shards"] == b["shards"]
        )
    other = take(TaskStream(shard_set, 3, seed=6, shuffle_buffer=4, workers=2, mixture=mixture), 9)
    assert [b["shards"] for b in other] != [b["shards"] for b in full]


def test_without_weights_the_sources_are_pooled_as_before(sets):
    shard_set, mixture = open_mixture([str(sets["A"]), str(sets["B"])])
    assert not mixture.weighted
    assert mixture.record() == {
        "sampling": "pooled",
        "sources": [
            {"source": str(sets["A"]), "weight": pytest.approx(2 / 3), "num_tasks": 24, "num_shards": 4},
            {"source": str(sets["B"]), "weight": pytest.approx(1 / 3), "num_tasks": 12, "num_shards": 3},
        ],
    }
    plain = take(TaskStream(open_shard_set([str(sets["A"]), str(sets["B"])]), 3, seed=2, shuffle_buffer=4), 6)
    pooled = take(TaskStream(shard_set, 3, seed=2, shuffle_buffer=4, mixture=mixture), 6)
    assert all(torch.equal(a["support"], b["support"]) and a["shards"] == b["shards"] for a, b in zip(plain, pooled))


def test_the_run_config_records_the_mixture_and_resume_continues_it(sets, tmp_path):
    shards = [f"{sets['A']}:0.75", f"{sets['B']}:0.25"]
    base = dict(
        shards=shards,
        hidden=8,
        meta_batch=2,
        workers=0,
        val_dataset="none",
        shuffle_buffer=4,
        log_every=2,
        checkpoint_every=2,
        device="cpu",
        seed=3,
        algo="protonets",
    )
    train(TrainConfig(out=str(tmp_path / "straight"), iterations=4, **base), progress=False)
    saved = json.loads((tmp_path / "straight" / "train_config.json").read_text())
    assert saved["shards"] == shards and saved["mixture"]["sampling"] == "weighted"
    assert [(s["source"], s["weight"], s["num_tasks"]) for s in saved["mixture"]["sources"]] == [
        (str(sets["A"]), 0.75, 24),
        (str(sets["B"]), 0.25, 12),
    ]
    train(TrainConfig(out=str(tmp_path / "split"), iterations=2, **base), progress=False)
    train(TrainConfig(out=str(tmp_path / "split"), iterations=4, **base), resume=True, progress=False)
    from safetensors.torch import load_file

    a, b = (
        load_file(str(tmp_path / "straight" / "last" / "model.safetensors")),
        load_file(str(tmp_path / "split" / "last" / "model.safetensors")),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_refuses_partial_weights_in_one_line(sets, tmp_path):
    from click.testing import CliRunner

    from lasium.train.cli import main

    r = CliRunner().invoke(
        main,
        [
            "--shards",
            f"{sets['A']}:0.5",
            "--shards",
            str(sets["B"]),
            "--out",
            str(tmp_path / "r"),
            "--device",
            "cpu",
            "--val-dataset",
            "none",
            "--quiet",
        ],
    )
    assert r.exit_code == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "give a weight to every --shards source" in lines[0]
    assert not (tmp_path / "r").exists()
