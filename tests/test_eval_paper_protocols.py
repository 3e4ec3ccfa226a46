"""The paper's protocols per dataset (the registry in lasium.evaluate.protocol) and ``lasium-eval`` using them by
default on fixture trees of CelebA and mini-ImageNet in their official formats."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from dataset_fixtures import MINI_CLASSES, write_celeba, write_mini_imagenet

from lasium.data import load_split
from lasium.evaluate import cli as eval_cli
from lasium.evaluate.protocol import PAPER_PROTOCOLS, EvalProtocol, make_episodes, paper_protocol
from lasium.train.checkpoint import save_checkpoint
from lasium.train.config import TrainConfig
from lasium.train.learner import LearnerConfig
from lasium.train.registry import build_learner

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore::lasium.data.registry.ReleaseWarning"),
]


def test_registry_holds_the_papers_protocols() -> None:
    table = {d: (p.ways, p.shots, p.queries, p.tasks, p.task_builder) for d, p in PAPER_PROTOCOLS.items()}
    assert table == {
        "omniglot": (5, (1, 5), 15, 1000, "classes"),
        "celeba": (5, (1, 5, 15), 15, 1000, "classes"),
        "celeba-attributes": (2, (5,), 5, 1000, "attributes"),
        "mini-imagenet": (5, (1, 5, 20, 50), 15, 1000, "classes"),
    }
    assert PAPER_PROTOCOLS["omniglot"].adapt_lr == 0.4 and PAPER_PROTOCOLS["mini-imagenet"].adapt_lr == 0.05
    assert paper_protocol("imagefolder:/x") is None


def test_for_dataset_defaults_and_overrides() -> None:
    p = EvalProtocol.for_dataset("mini-imagenet")
    assert (p.ways, p.shots, p.queries, p.tasks, p.adapt_steps, p.adapt_lr) == (5, (1, 5, 20, 50), 15, 1000, 50, 0.05)
    q = EvalProtocol.for_dataset("celeba-attributes", tasks=10, shots=None, seed=3)
    assert (q.ways, q.shots, q.queries, q.tasks, q.seed) == (2, (5,), 5, 10, 3)
    folder = EvalProtocol.for_dataset("imagefolder:/x")
    assert (folder.ways, folder.shots, folder.queries, folder.adapt_lr) == (5, (1, 5), 15, 0.4)
    assert EvalProtocol.for_dataset("omniglot") == EvalProtocol()  # Omniglot's defaults are unchanged


def make_run(path, algo: str, ways: int, image_shape=(84, 84, 3)):
    torch.manual_seed(0)
    learner = build_learner(LearnerConfig(algo=algo, ways=ways, image_shape=image_shape, hidden=4))
    config = TrainConfig(
        shards=["unused"], out=str(path), algo=algo, ways=ways, shots=1, queries=5, image_shape=list(image_shape),
        iterations=1, meta_batch=1, hidden=4,
    )  # fmt: skip
    save_checkpoint(path / "last", learner, config, state={"step": 1, "tasks_seen": 1})
    return path


def invoke(*args: str):
    result = CliRunner().invoke(eval_cli.main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def mini_root(tmp_path, monkeypatch):
    """A mini-ImageNet tree whose 5 test classes hold 65 images: enough for 50 shots + 15 queries."""
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    classes = {"train": MINI_CLASSES["train"], "val": MINI_CLASSES["val"], "test": MINI_CLASSES["test"][:5]}
    write_mini_imagenet(tmp_path / "data", classes=classes, images_per_class=65)
    return tmp_path / "data"


def test_mini_imagenet_checkpoint_gets_the_paper_protocol_by_default(tmp_path, mini_root) -> None:
    run = make_run(tmp_path / "run", "protonets", ways=5)
    code, out, err = invoke(
        "--checkpoint", str(run), "--dataset", "mini-imagenet", "--data-root", str(mini_root), "--tasks", "3",
        "--quiet", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads((run / "eval-mini-imagenet-test.json").read_text())
    protocol = report["protocol"]
    assert (protocol["ways"], protocol["shots"], protocol["queries"]) == (5, [1, 5, 20, 50], 15)
    assert protocol["adapt_lr"] == 0.05 and protocol["dataset"] == "mini-imagenet"
    assert [r["shots"] for r in report["results"]] == [1, 5, 20, 50]
    assert report["dataset"]["image_shape"] == [84, 84, 3] and report["dataset"]["classes"] == 5
    assert "5-way, 15 queries/class" in out


def test_mini_imagenet_baseline_smoke_at_84px(tmp_path, mini_root) -> None:
    out = tmp_path / "scratch.json"
    code, _, err = invoke(
        "--baseline", "scratch", "--algo", "protonets", "--dataset", "mini-imagenet", "--data-root", str(mini_root),
        "--shots", "1", "--tasks", "2", "--quiet", "--device", "cpu", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report["learner"]["image_shape"] == [84, 84, 3]  # the dataset's size, not Omniglot's 28
    assert report["protocol"]["queries"] == 15 and len(report["results"]) == 1


@pytest.fixture
def celeba_root(tmp_path, monkeypatch):
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    return write_celeba(tmp_path / "data").folder.parent


def test_celeba_attributes_default_protocol_and_two_way_rebuild(tmp_path, celeba_root) -> None:
    run = make_run(tmp_path / "proto", "protonets", ways=5)  # ProtoNets score any N with the same weights
    code, out, err = invoke(
        "--checkpoint", str(run), "--dataset", "celeba-attributes", "--data-root", str(celeba_root), "--tasks", "5",
        "--quiet", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads((run / "eval-celeba-attributes-test.json").read_text())
    assert (report["protocol"]["ways"], report["protocol"]["shots"], report["protocol"]["queries"]) == (2, [5], 5)
    maml = make_run(tmp_path / "maml", "maml", ways=5)
    code, _, err = invoke(
        "--checkpoint", str(maml), "--dataset", "celeba-attributes", "--data-root", str(celeba_root), "--quiet",
        "--device", "cpu",
    )  # fmt: skip
    assert code == 2 and "celeba-attributes tasks are 2-way" in err and "lasium-gen --ways 2" in err


def test_celeba_identity_default_protocol_needs_16_images_per_identity(tmp_path, celeba_root) -> None:
    code, _, err = invoke(
        "--baseline", "scratch", "--algo", "protonets", "--dataset", "celeba", "--data-root", str(celeba_root),
        "--quiet", "--device", "cpu", "--out", str(tmp_path / "x.json"),
    )  # fmt: skip
    # K_tr 1 + 15 queries already: the fixture's identities (6 images each) cannot fill a row; identities with
    # fewer than K_tr + 15 images are left out, as the authors' keep_keys_with_greater_than_equal_k_items does.
    assert code == 2 and "at least 16 images (shots + queries)" in err
    code, out, err = invoke(
        "--baseline", "scratch", "--algo", "protonets", "--dataset", "celeba", "--data-root", str(celeba_root),
        "--shots", "1", "--queries", "2", "--tasks", "3", "--quiet", "--device", "cpu",
        "--out", str(tmp_path / "y.json"),
    )  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "y.json").read_text())["protocol"]["ways"] == 5


def test_episodes_refuse_images_of_another_kind(celeba_root) -> None:
    identities = load_split("celeba", "test", data_root=celeba_root, progress=False)
    with pytest.raises(Exception, match="tasks are built from attributes"):
        make_episodes(identities, EvalProtocol.for_dataset("celeba-attributes", tasks=2), 5)


def test_real_tasks_and_validation_use_attribute_tasks(tmp_path, celeba_root) -> None:
    """lasium-gen --source real and the trainer's validation build attribute tasks for celeba-attributes."""
    import numpy as np
    from cli_helpers import invoke_gen

    from lasium.shards import iter_tasks
    from lasium.train.validation import Validator

    out = tmp_path / "shards"
    result = invoke_gen(
        "--source", "real", "--dataset", "celeba-attributes", "--data-root", str(celeba_root), "--split", "train",
        "--ways", "2", "--shots", "5", "--queries", "5", "--n-tasks", "4", "--out", str(out),
        "--workers", "0", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    train = load_split("celeba-attributes", "train", data_root=celeba_root, progress=False)
    index = {image_id: i for i, image_id in enumerate(train.image_ids)}
    for task in iter_tasks(out):
        rows = [[index[i] for i in row] for row in task.meta["source_ids"]]
        columns = task.meta["attributes"]
        assert all(c < 20 for c in columns)  # meta-train attributes
        bits = [train.attributes.values[r][:, columns] for r in rows]
        assert (bits[0] == bits[0][0]).all() and (bits[1] == ~bits[0][0]).all()
    validator = Validator(
        "celeba-attributes", ways=2, shots=5, queries=5, num_tasks=3, image_shape=(84, 84, 3), data_root=celeba_root
    )
    assert validator.support.shape == (3, 2, 5, 84, 84, 3) and np.isin(validator.perm.numpy(), [0, 1]).all()
