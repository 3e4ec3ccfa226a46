"""mini-ImageNet in the two layouts people have (split folders, split CSVs + images/), its checks against the
Ravi & Larochelle split, and the refusal of pickled caches."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from dataset_fixtures import MINI_CLASSES, write_mini_imagenet
from PIL import Image

from lasium.data import load_decoded, load_split, load_unlabeled
from lasium.data.cli import main as data_main
from lasium.data.mini_imagenet import RAVI_LAROCHELLE_CLASSES
from lasium.data.registry import ReleaseWarning
from lasium.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore::lasium.data.registry.ReleaseWarning")


def load(root: Path, cache: Path, **kw):
    return load_decoded("mini-imagenet", data_root=root, cache_dir=cache, progress=False, **kw)


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0])
    return errors[0]


def test_split_folders_layout(tmp_path: Path) -> None:
    write_mini_imagenet(tmp_path / "data")
    data = load(tmp_path / "data", tmp_path / "cache")
    assert data.image_shape == (84, 84, 3) and isinstance(data.images, np.memmap)
    assert "split folders" in data.info["layout"] and data.info["cache"] == "written"
    for split, wnids in MINI_CLASSES.items():
        images = load_split("mini-imagenet", split, data_root=tmp_path / "data", cache_dir=tmp_path / "cache")
        assert images.class_names == wnids and images.class_counts().tolist() == [8] * len(wnids)
        assert images.image_ids[0] == f"mini-imagenet/{wnids[0]}00000001.jpg"
    source = np.asarray(Image.open(tmp_path / "data/mini-imagenet/test/n01930112/n0193011200000003.jpg"))
    test = load_split("mini-imagenet", "test", data_root=tmp_path / "data", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(test.images[2], source)  # an 84x84 source is stored as decoded
    pool = load_unlabeled("mini-imagenet", data_root=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert len(pool) == 24 and pool.fingerprint == data.fingerprints["unlabeled"]


def test_csv_layout_gives_the_same_arrays_as_the_folders(tmp_path: Path) -> None:
    write_mini_imagenet(tmp_path / "folders")
    write_mini_imagenet(tmp_path / "csv", layout="csv")
    a = load(tmp_path / "folders", tmp_path / "c1")
    b = load(tmp_path / "csv", tmp_path / "c2")
    assert "split CSVs" in b.info["layout"] and a.fingerprints == b.fingerprints
    assert a.image_ids == b.image_ids and a.class_names == b.class_names and a.class_splits == b.class_splits
    assert load(tmp_path / "csv", tmp_path / "c2").info["cache"] == "hit"


def test_other_sizes_are_resized_and_the_root_itself_works(tmp_path: Path) -> None:
    folder = write_mini_imagenet(tmp_path / "data", size=(120, 100), ext="png")
    data = load(folder, tmp_path / "cache")  # --data-root pointing at the copy itself
    assert data.image_shape == (84, 84, 3)
    small = load(folder, tmp_path / "cache", image_size=32, channels=1)
    assert small.image_shape == (32, 32, 1)


def test_ravi_larochelle_split_is_recognised(tmp_path: Path) -> None:
    write_mini_imagenet(
        tmp_path / "data", classes={s: list(c) for s, c in RAVI_LAROCHELLE_CLASSES.items()}, images_per_class=1,
        size=(8, 8),
    )  # fmt: skip
    with pytest.warns(ReleaseWarning) as record:
        data = load(tmp_path / "data", tmp_path / "cache", image_size=8)
    notes = data.info["release"]
    assert [len(set(RAVI_LAROCHELLE_CLASSES[s])) for s in ("train", "val", "test")] == [64, 16, 20]
    assert notes == [
        "64 train classes do not hold 600 images (e.g. n01532829)",
        "16 val classes do not hold 600 images (e.g. n01855672)",
        "20 test classes do not hold 600 images (e.g. n01930112)",
    ]
    assert "600 images" in str(record[0].message)
    fixture = load(write_mini_imagenet(tmp_path / "small").parent, tmp_path / "cache")
    assert (
        "train has 3 classes (0 not in the Ravi & Larochelle train split, 61 of its 64 missing)"
        in (fixture.info["release"])
    )


def evil_pickle(path: Path, marker: Path) -> None:
    """A pickle that, if it were ever unpickled, would create ``marker``."""

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path.write_bytes(pickle.dumps(Evil()))


def test_pickled_caches_are_refused_without_unpickling(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "mini-imagenet").mkdir(parents=True)
    marker = tmp_path / "unpickled"
    evil_pickle(root / "mini-imagenet" / "mini-imagenet-cache-train.pkl", marker)
    result = CliRunner().invoke(data_main, ["info", "mini-imagenet", "--data-root", str(root)])
    line = one_error_line(result)
    assert "mini-imagenet-cache-train.pkl is a pickled cache" in line and "never unpickles" in line
    assert "{train,val,test}/<wnid>/<image>.png" in line
    assert not marker.exists()
    with pytest.raises(DataError, match="pickled cache"):
        load(root, tmp_path / "cache")
    assert not marker.exists()
    # A real layout beside the pickle is used; the pickle is never opened.
    write_mini_imagenet(root)
    assert load(root, tmp_path / "cache").image_shape == (84, 84, 3) and not marker.exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "test.csv").unlink(), r"has no test.csv"),
        (lambda f: (f / "val.csv").write_text("file,class\nx.jpg,n1\n"), r"val.csv line 1: expected the header"),
        (
            lambda f: (f / "train.csv").write_text("filename,label\nn0153282900000001.jpg\n"),
            r"train.csv line 2: expected '<file name>,<class>'",
        ),
        (
            lambda f: (f / "train.csv").write_text("filename,label\nnotes.txt,n01532829\n"),
            r"train.csv line 2: notes.txt is not an image file name",
        ),
        (
            lambda f: (f / "images" / "n0193011200000002.jpg").unlink(),
            r"images/n0193011200000002.jpg is missing \(listed in test.csv\)",
        ),
        (
            lambda f: (f / "val.csv").write_text("filename,label\nn0153282900000001.jpg,n01532829\n"),
            r"n0153282900000001.jpg is listed in both train.csv and val.csv",
        ),
        (lambda f: (f / "train.csv").write_text("filename,label\n"), r"train.csv lists no images"),
    ],
)
def test_csv_layout_errors(tmp_path: Path, damage, message) -> None:
    folder = write_mini_imagenet(tmp_path / "data", layout="csv")
    damage(folder)
    with pytest.raises(DataError, match=message):
        load(tmp_path / "data", tmp_path / "cache")


def test_folder_layout_errors_and_absence(tmp_path: Path) -> None:
    folder = write_mini_imagenet(tmp_path / "data")
    (folder / "test" / "n01930112" / "n0193011200000001.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match="n0193011200000001.jpg is not a readable image"):
        load(tmp_path / "data", tmp_path / "cache")
    (folder / "test" / "n01930112" / "n0193011200000001.jpg").unlink()
    (folder / "val" / "n01855672" / "labels.txt").write_text("x")
    with pytest.raises(DataError, match="labels.txt is not an image file"):
        load(tmp_path / "data", tmp_path / "cache")
    partial = tmp_path / "partial" / "mini-imagenet"
    (partial / "train" / "n01532829").mkdir(parents=True)
    with pytest.raises(DataError, match="has no val, test folder"):
        load(tmp_path / "partial", tmp_path / "cache")
    result = CliRunner().invoke(data_main, ["info", "mini-imagenet", "--data-root", str(tmp_path / "none")])
    assert "mini-ImageNet not found" in one_error_line(result) and "mini-imagenet-tools" in result.stderr


def test_info_json(tmp_path: Path) -> None:
    write_mini_imagenet(tmp_path / "data", layout="csv")
    args = ["info", "mini-imagenet", "--data-root", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(data_main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {s: (v["classes"], v["images"]) for s, v in report["splits"].items()} == {
        "train": (3, 24),
        "val": (2, 16),
        "test": (6, 48),
    }
    assert report["split_source"] == "train.csv, val.csv, test.csv" and report["image_shape"] == [84, 84, 3]
    assert report["cache"].endswith(".npy") and report["cache_status"] == "written"
