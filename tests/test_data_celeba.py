"""CelebA from the official files: layouts, strict parsing, the crop the paper uses, the memory-mapped cache,
identity splits, attribute task pools and the attribute episode sampler."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from dataset_fixtures import CELEBA_ATTRIBUTES, write_celeba
from PIL import Image

from lasium.data import AttributeEpisodeSampler, EpisodeSampler, episode_sampler, load_decoded, load_split
from lasium.data.attributes import attribute_pools
from lasium.data.celeba import CROP_BOX, load_celeba
from lasium.data.celeba_files import parse_attributes
from lasium.data.cli import main as data_main
from lasium.data.preprocess import crop_and_resize
from lasium.data.registry import ReleaseWarning
from lasium.errors import ConfigError, DataError

pytestmark = pytest.mark.filterwarnings("ignore::lasium.data.registry.ReleaseWarning")


@pytest.fixture
def tree(tmp_path: Path):
    return write_celeba(tmp_path / "data")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def load(tree, cache: Path, dataset: str = "celeba", **kw):
    return load_decoded(dataset, data_root=tree.folder.parent, cache_dir=cache, progress=False, **kw)


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0])
    return errors[0]


# ----------------------------------------------------------------------------- crop and resize


def reference_crop_and_resize(image: np.ndarray, box, size) -> np.ndarray:
    """tf.image.crop_and_resize (bilinear, crop_size > 1), pixel by pixel as its C++ kernel computes it."""
    y1, x1, y2, x2 = (np.float32(v) for v in box)
    height, width = image.shape[:2]
    h, w = size
    hs = (y2 - y1) * np.float32(height - 1) / np.float32(h - 1)
    ws = (x2 - x1) * np.float32(width - 1) / np.float32(w - 1)
    out = np.zeros((h, w, image.shape[2]), np.float32)
    img = image.astype(np.float32)
    for i in range(h):
        in_y = y1 * np.float32(height - 1) + np.float32(i) * hs
        top, bottom = int(np.floor(in_y)), int(np.ceil(in_y))
        y_lerp = in_y - np.float32(top)
        for j in range(w):
            in_x = x1 * np.float32(width - 1) + np.float32(j) * ws
            left, right = int(np.floor(in_x)), int(np.ceil(in_x))
            x_lerp = in_x - np.float32(left)
            t = img[top, left] + (img[top, right] - img[top, left]) * x_lerp
            b = img[bottom, left] + (img[bottom, right] - img[bottom, left]) * x_lerp
            out[i, j] = t + (b - t) * y_lerp
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def test_crop_and_resize_matches_the_tensorflow_kernel_pixel_by_pixel() -> None:
    image = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    for box, size in ((CROP_BOX, (84, 84)), ((0.25, 0.25, 0.8, 0.75), (84, 84)), ((0.0, 0.0, 1.0, 1.0), (30, 20))):
        np.testing.assert_array_equal(crop_and_resize(image, box, size), reference_crop_and_resize(image, box, size))


def test_crop_and_resize_equals_tensorflow_where_it_is_installed() -> None:
    """The real thing, when TensorFlow is importable (it is not a dependency: skipped otherwise)."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    for box in (CROP_BOX, (0.25, 0.25, 0.8, 0.75), (0.0, 0.0, 1.0, 1.0)):
        image = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        reference = tf.image.crop_and_resize(image[None], [list(box)], [0], (84, 84))[0].numpy()
        np.testing.assert_array_equal(crop_and_resize(image, box, (84, 84)), np.floor(reference + 0.5))


def test_crop_box_takes_the_middle_of_the_aligned_face() -> None:
    """The 0.2-0.8 box of a 178x218 image covers rows 43.4-173.6 and columns 35.4-141.6: paint that region one
    colour and the outside another, and the whole 84x84 output is the inside colour, its rim blended."""
    image = np.zeros((218, 178, 3), np.uint8)
    image[44:174, 36:142] = (200, 100, 50)
    out = crop_and_resize(image, CROP_BOX, (84, 84))
    assert out.shape == (84, 84, 3)
    assert (out[1:-1, 1:-1] == (200, 100, 50)).all()
    assert out[0, 0].tolist() != [200, 100, 50]  # (43.4, 35.4) blends the outside in
    with pytest.raises(ValueError, match="crop box"):
        crop_and_resize(image, (0.8, 0.2, 0.2, 0.8), (84, 84))


def test_loaded_images_are_the_cropped_files(tree, cache: Path) -> None:
    data = load(tree, cache)
    assert data.image_shape == (84, 84, 3)
    for row in (0, 17, len(tree.names) - 1):
        source = np.asarray(Image.open(tree.folder / "img_align_celeba" / tree.names[row]).convert("RGB"))
        np.testing.assert_array_equal(data.images[row], crop_and_resize(source, CROP_BOX, (84, 84)))
    gray = load(tree, cache, channels=1, image_size=(32, 28))
    assert gray.image_shape == (32, 28, 1)


# ----------------------------------------------------------------------------- splits, classes, cache


def test_identity_splits_follow_the_partition_file(tree, cache: Path) -> None:
    for split, identities in (("train", 6), ("val", 5), ("test", 5)):
        images = load_split("celeba", split, data_root=tree.folder.parent, cache_dir=cache, progress=False)
        assert images.num_classes == identities and len(images) == identities * 6
        assert images.class_counts().tolist() == [6] * identities
        want = [f"celeba/{n}" for n, s in zip(tree.names, tree.splits) if s == split]
        assert images.image_ids == want and images.task_kind == "classes" and images.attributes is None
        expected_ids = sorted({i for i, s in zip(tree.identities, tree.splits) if s == split})
        assert images.class_names == [str(i) for i in expected_ids]


def test_cache_is_memory_mapped_shared_and_deterministic(tree, cache: Path, tmp_path: Path) -> None:
    first = load(tree, cache)
    assert first.info["cache"] == "written" and isinstance(first.images, np.memmap)
    test = load_split("celeba", "test", data_root=tree.folder.parent, cache_dir=cache, progress=False)
    assert isinstance(test.images, np.memmap) and not test.images.flags.writeable  # a view, no copy
    again = load(tree, cache, "celeba-attributes")
    assert again.info["cache"] == "hit" and again.info["cache_file"] == first.info["cache_file"]  # one cache
    other = load(tree, tmp_path / "other-cache")  # decoded again elsewhere: the same bytes and fingerprints
    assert other.fingerprints == first.fingerprints
    np.testing.assert_array_equal(np.asarray(other.images), np.asarray(first.images))
    assert not list(Path(cache).rglob("*.partial"))
    # A changed image misses the cache.
    class_image = Image.new("RGB", (178, 218), (1, 2, 3))
    class_image.save(tree.folder / "img_align_celeba" / tree.names[0], quality=95)
    assert load(tree, cache).info["cache"] == "written"


def test_unlabeled_train_is_the_train_partition(tree, cache: Path) -> None:
    from lasium.data import load_unlabeled

    pool = load_unlabeled("celeba", data_root=tree.folder.parent, cache_dir=cache, progress=False)
    assert len(pool) == 36 and pool.image_shape == (84, 84, 3)
    train = load_split("celeba", "train", data_root=tree.folder.parent, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(np.asarray(pool.images), np.asarray(train.images))
    assert pool.fingerprint != train.fingerprint  # labels are part of the labeled fingerprint


def test_drive_layout_reads_the_same_images(tmp_path: Path) -> None:
    flat = write_celeba(tmp_path / "flat")
    drive = write_celeba(tmp_path / "drive", drive_layout=True)
    a = load_decoded("celeba", data_root=flat.folder.parent, cache_dir=tmp_path / "c1", progress=False)
    b = load_decoded("celeba", data_root=drive.folder, cache_dir=tmp_path / "c2", progress=False)  # root itself
    assert a.fingerprints == b.fingerprints


def test_release_differences_are_reported_and_warned(tree, cache: Path) -> None:
    with pytest.warns(ReleaseWarning, match="not the published release"):
        data = load(tree, cache)
    notes = " ".join(data.info["release"])
    assert "96 images (partition 36 / 30 / 30)" in notes and "202,599" in notes and "16 identities" in notes


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "list_eval_partition.txt").unlink(), r"celeba/list_eval_partition.txt is missing"),
        (lambda f: (f / "identity_CelebA.txt").unlink(), r"identity_CelebA.txt is missing"),
        (lambda f: (f / "list_attr_celeba.txt").unlink(), r"list_attr_celeba.txt is missing"),
        (lambda f: (f / "img_align_celeba" / "000007.jpg").unlink(), r"000007.jpg is missing \(listed in"),
        (
            lambda f: (f / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 3\n"),
            r"list_eval_partition.txt line 2: expected '<image> <0\|1\|2>', got '000002.jpg 3'",
        ),
        (
            lambda f: (f / "list_eval_partition.txt").write_text("000001.jpg 0\n000001.jpg 1\n"),
            r"line 2: 000001.jpg is listed twice",
        ),
        (
            lambda f: (f / "identity_CelebA.txt").write_text("000001.jpg 12\n000002.jpg abc\n"),
            r"identity_CelebA.txt line 2: expected '<image> <identity number>'",
        ),
        (
            lambda f: (f / "identity_CelebA.txt").write_text("000001.jpg 12\n"),
            r"000002.jpg is in list_eval_partition.txt but not in identity_CelebA.txt",
        ),
        (lambda f: (f / "list_eval_partition.txt").write_text(""), r"list_eval_partition.txt lists no images"),
    ],
)
def test_missing_or_malformed_files_are_one_line(tree, cache: Path, damage, message) -> None:
    damage(tree.folder)
    with pytest.raises(DataError, match=message):
        load(tree, cache)


def rewrite_attr(folder: Path, edit) -> None:
    path = folder / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: lines.__setitem__(0, "ninety-six"), r"list_attr_celeba.txt line 1: expected the number"),
        (lambda lines: lines.__setitem__(1, " ".join(CELEBA_ATTRIBUTES[:39])), r"line 2: expected the 40 attribute"),
        (lambda lines: lines.__setitem__(0, "97"), r"says it lists 97 images \(line 1\) but lists 96"),
        (lambda lines: lines.__setitem__(5, lines[5] + " 1"), r"line 6: expected an image name and 40 values"),
        (lambda lines: lines.__setitem__(4, lines[4].replace("-1", "0", 1)), r"line 5: expected an image name"),
        (lambda lines: lines.__delitem__(2), r"says it lists 96 images \(line 1\) but lists 95"),
    ],
)
def test_malformed_attribute_file_is_one_line(tree, cache: Path, edit, message) -> None:
    rewrite_attr(tree.folder, edit)
    with pytest.raises(DataError, match=message):
        load(tree, cache, "celeba-attributes")


def test_missing_folder_zip_and_cli_errors_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(data_main, ["info", "celeba", "--data-root", str(empty)])
    assert "CelebA not found" in one_error_line(result) and "mmlab.ie.cuhk.edu.hk" in result.stderr
    zipped = tmp_path / "zipped" / "celeba"
    zipped.mkdir(parents=True)
    (zipped / "img_align_celeba.zip").write_bytes(b"PK")
    result = CliRunner().invoke(data_main, ["info", "celeba-attributes", "--data-root", str(zipped.parent)])
    assert "still zipped: unzip" in one_error_line(result)


def test_unreadable_image_is_one_line(tree, cache: Path) -> None:
    (tree.folder / "img_align_celeba" / tree.names[3]).write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=rf"{tree.names[3]} is not a readable image"):
        load(tree, cache)
    assert not list(Path(cache).rglob("*.npy"))  # nothing half-written is left as a cache entry


# ----------------------------------------------------------------------------- attributes and their tasks


def brute_force_pools(values: np.ndarray, columns: range, need: int) -> set[tuple]:
    """Every (three columns, values) with both the conjunction and its full negation held by >= need images."""
    pools = set()
    for triple in itertools.combinations(columns, 3):
        for bits in itertools.product((False, True), repeat=3):
            if bits[0]:
                continue  # the other half are the same pools with the classes swapped
            pos = np.all(values[:, list(triple)] == bits, axis=1).sum()
            neg = np.all(values[:, list(triple)] == np.logical_not(bits), axis=1).sum()
            if pos >= need and neg >= need:
                pools.add((triple, bits))
    return pools


def test_attribute_table_and_pools_follow_the_cactus_split(tree, cache: Path) -> None:
    header, names, values = parse_attributes(tree.folder / "list_attr_celeba.txt")
    assert header == CELEBA_ATTRIBUTES and values.shape == (96, 40)
    np.testing.assert_array_equal(values, np.array(tree.attributes))
    for split, columns in (("train", range(0, 20)), ("val", range(20, 30)), ("test", range(30, 40))):
        images = load_split("celeba-attributes", split, data_root=tree.folder.parent, cache_dir=cache, progress=False)
        assert images.task_kind == "attributes" and images.attributes.task_range == (columns.start, columns.stop)
        rows = [i for i, s in enumerate(tree.splits) if s == split]
        np.testing.assert_array_equal(images.attributes.values, np.array(tree.attributes)[rows])
        pools, counts = attribute_pools(images.attributes)
        got = {(p.columns, p.values) for p in pools}
        assert got == brute_force_pools(images.attributes.values, columns, 11)  # "more than 10" a side
        assert (counts > 10).all()
        assert len(pools) > 0


def test_attribute_tasks_are_two_disjoint_conjunctions(tree, cache: Path) -> None:
    images = load_split("celeba-attributes", "test", data_root=tree.folder.parent, cache_dir=cache, progress=False)
    sampler = episode_sampler(images, 2, 5, 5, seed=3)
    assert isinstance(sampler, AttributeEpisodeSampler)
    batch = sampler.tasks(0, 40)
    assert batch.support.shape == (40, 2, 5, 84, 84, 3) and batch.query.shape == (40, 2, 5, 84, 84, 3)
    index = {image_id: i for i, image_id in enumerate(images.image_ids)}
    values = images.attributes.values
    swaps = 0
    for t, meta in enumerate(batch.metas):
        columns = meta["attributes"]
        assert len(columns) == 3 and all(30 <= c < 40 for c in columns)
        rows = [[index[i] for i in row] for row in meta["source_ids"]]
        assert len(set(rows[0]) | set(rows[1])) == 20  # distinct images, none in both classes
        bits = [values[r][:, columns] for r in rows]
        assert (bits[0] == bits[0][0]).all() and (bits[1] == bits[1][0]).all()  # one conjunction per class
        assert (bits[0][0] != bits[1][0]).all()  # the other class negates all three
        names = [CELEBA_ATTRIBUTES[c] for c in columns]
        assert meta["classes"][0] == " & ".join(f"{n}={int(v)}" for n, v in zip(names, bits[0][0]))
        swaps += bool(bits[0][0][0])  # class 0 has the first attribute set: the pool's classes were swapped
        np.testing.assert_array_equal(batch.support[t, 0, 0], images.images[rows[0][0]])
    assert 0 < swaps < 40
    again = episode_sampler(images, 2, 5, 5, seed=3)
    np.testing.assert_array_equal(again.tasks(0, 40).query, batch.query)
    assert again.sample(17).meta == batch.task(17).meta
    assert episode_sampler(images, 2, 5, 5, seed=4).tasks(0, 40).metas != batch.metas


def test_attribute_sampler_errors(tree, cache: Path) -> None:
    images = load_split("celeba-attributes", "test", data_root=tree.folder.parent, cache_dir=cache, progress=False)
    with pytest.raises(ConfigError, match="2-way"):
        episode_sampler(images, 5, 5, 5)
    with pytest.raises(ConfigError, match="no attribute pool"):
        episode_sampler(images, 2, 30, 30)
    with pytest.raises(ConfigError, match="episode_sampler"):
        EpisodeSampler(images, 2, 5, 5)  # class labels are not what attribute tasks are drawn from


# ----------------------------------------------------------------------------- lasium-data info


def test_info_describes_both_datasets(tree, cache: Path) -> None:
    root = str(tree.folder.parent)
    result = CliRunner().invoke(data_main, ["info", "celeba", "--data-root", root, "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line.split()[1:4]
        for line in result.stdout.splitlines()
        if line[:5] in ("train", "val  ", "test ")
    }
    assert rows == {"train": ["6", "36", "84x84x3"], "val": ["5", "30", "84x84x3"], "test": ["5", "30", "84x84x3"]}
    assert "list_eval_partition.txt (0 train, 1 val, 2 test)" in result.stdout and "0.2, 0.2, 0.8, 0.8" in result.stdout
    assert "not the published release" not in result.stderr  # the release lines say it, once
    result = CliRunner().invoke(
        data_main, ["info", "celeba-attributes", "--data-root", root, "--cache-dir", str(cache), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cache_status"] == "hit" and report["task_kind"] == "attributes"
    tasks = report["attribute_tasks"]
    assert tasks["min_exclusive"] == 10 and tasks["attributes"] == 40
    assert tasks["splits"]["test"]["columns"] == "30-39 (Sideburns .. Young)"
    test = load_split("celeba-attributes", "test", data_root=root, cache_dir=cache, progress=False)
    assert tasks["splits"]["test"]["pools"] == len(attribute_pools(test.attributes)[0])


def test_load_celeba_whole_image_option(tree, cache: Path) -> None:
    data = load_celeba(tree.folder.parent, cache, (40, 32), crop_box=(0.0, 0.0, 1.0, 1.0), progress=False)
    source = np.asarray(Image.open(tree.folder / "img_align_celeba" / tree.names[0]).convert("RGB"))
    np.testing.assert_array_equal(data.images[0], crop_and_resize(source, (0, 0, 1, 1), (40, 32)))
