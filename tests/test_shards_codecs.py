"""Image codecs of WebDataset tasks (lasium.shards.codecs): exact round trips for the lossless ones, the codec in
every manifest and on the card, stock readers, and one-line refusals of unknown or mismatched codecs."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from shards_helpers import expected_tasks, make_batch, make_header, write_set

from lasium.errors import ShardError
from lasium.shards import iter_shard_tasks, iter_tasks, read_manifest, verify_shard_set, write_manifest, write_shard
from lasium.shards.card import write_card
from lasium.shards.cli import main as shards_cli
from lasium.shards.codecs import IMAGE_CODECS, default_image_codec, from_mosaic, get_image_codec, to_mosaic
from lasium.shards.format import IMAGE_CODEC_SUFFIXES
from lasium.shards.manifest import read_sidecar
from lasium.tasks import TaskBatch

LOSSLESS = [name for name, codec in IMAGE_CODECS.items() if codec is not None and codec.lossless]


def test_registry_matches_the_format_and_mosaic_inverts():
    assert set(IMAGE_CODECS) == set(IMAGE_CODEC_SUFFIXES) and LOSSLESS == ["png", "webp"]
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 4, 6, 3), dtype=np.uint8)
    mosaic = to_mosaic(images)
    assert mosaic.shape == (5 * 4, 3 * 6, 3)
    assert np.array_equal(mosaic[4:8, 12:18], images[1, 2])  # class 1, example 2
    assert np.array_equal(from_mosaic(mosaic, images.shape), images)


@pytest.mark.parametrize("codec", LOSSLESS)
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_codecs_round_trip_exactly(codec, channels):
    images = np.random.default_rng(channels).integers(0, 256, (5, 2, 12, 10, channels), dtype=np.uint8)
    c = get_image_codec(codec)
    assert np.array_equal(c.decode(c.encode(images), images.shape, "m", "s"), images)
    assert c.encode(images) == c.encode(images)  # same pixels, same bytes


@pytest.mark.parametrize("codec", LOSSLESS)
def test_lossless_set_reads_back_exactly_and_verifies(tmp_path, codec):
    write_set(tmp_path, "wds", latents=True, image_codec=codec)
    m = read_manifest(tmp_path)
    assert m.image_codec == codec and json.loads((tmp_path / "manifest.json").read_text())["image_codec"] == codec
    suffix = IMAGE_CODEC_SUFFIXES[codec]
    with tarfile.open(tmp_path / "tiny-000000.tar") as tar:
        assert tar.getnames()[:4] == [
            f"task-000000000.{n}" for n in (f"support.{suffix}", f"query.{suffix}", "latents.npy", "meta.json")
        ]
    want = expected_tasks(7, latents=True)
    got = list(iter_tasks(tmp_path))
    assert [t.meta["index"] for t in got] == list(range(7))
    for i, t in enumerate(got):
        assert np.array_equal(t.support, want.support[i]) and np.array_equal(t.query, want.query[i])
        assert np.array_equal(t.latents, want.latents[i])
    assert verify_shard_set(tmp_path).ok
    # a shard read on its own with its sidecar's layout and entry
    side, entry = read_sidecar(tmp_path / "tiny-000001.tar.json")
    shard = iter_shard_tasks(str(tmp_path / "tiny-000001.tar"), layout=side.layout, entry=entry)
    assert [t.meta["index"] for t in shard] == [3, 4, 5]


def test_colour_84px_webp_set_with_gzip_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    header = make_header(2, 2, image_shape=[84, 84, 3], image_codec="webp", ways=5, shots=1, queries=5)
    support = rng.integers(0, 256, (2, 5, 1, 84, 84, 3), dtype=np.uint8)
    query = rng.integers(0, 256, (2, 5, 5, 84, 84, 3), dtype=np.uint8)
    batch = TaskBatch(support, query, None, [{}, {}])
    entry = write_shard(tmp_path, "rgb", 0, 0, batch, "wds", header, compression="gzip")
    write_manifest(tmp_path, header, [entry])
    got = list(iter_tasks(tmp_path))
    assert all(np.array_equal(t.support, support[i]) and np.array_equal(t.query, query[i]) for i, t in enumerate(got))
    import webdataset as wds  # a stock reader: its default image handler, then the recipe of docs/shard-format.md 3.2

    sample = list(wds.WebDataset(str(tmp_path / "rgb-000000.tar.gz"), shardshuffle=False).decode("rgb8"))[1]
    mosaic = sample["query.webp"]
    assert mosaic.shape == (5 * 84, 5 * 84, 3)
    assert np.array_equal(mosaic.reshape(5, 84, 5, 84, 3).transpose(0, 2, 1, 3, 4), query[1])


def test_stock_webdataset_decodes_the_image_members(tmp_path):
    import webdataset as wds

    write_set(tmp_path, "wds", image_codec="webp")
    want = expected_tasks(7)
    samples = list(wds.WebDataset(str(tmp_path / "tiny-{000000..000002}.tar"), shardshuffle=False).decode("l8"))
    assert [s["__key__"] for s in samples] == [f"task-{i:09d}" for i in range(7)]
    ways, shots, h, w, _ = want.support[0].shape
    mosaic = samples[4]["support.webp"]  # the default image handler: (N·H, K·W) grey
    assert mosaic.shape == (ways * h, shots * w)
    assert np.array_equal(mosaic.reshape(ways, h, shots, w).transpose(0, 2, 1, 3), want.support[4][..., 0])


def test_jpeg_is_lossy_recorded_and_named_on_the_card(tmp_path):
    write_set(tmp_path, "wds", image_codec="jpeg")
    m = read_manifest(tmp_path)
    assert m.image_codec == "jpeg"
    got = list(iter_tasks(tmp_path))
    assert got[0].support.shape == expected_tasks(7).support[0].shape
    readme, _ = write_card(tmp_path)
    text = readme.read_text()
    assert "Lossy images" in text and "JPEG quality 90" in text and "support.jpg" in text


def test_every_manifest_records_its_codec_and_the_default_is_by_image_size(tmp_path):
    write_set(tmp_path, "wds")
    assert json.loads((tmp_path / "manifest.json").read_text())["image_codec"] == "npy"
    assert default_image_codec((84, 84, 3)) == "webp"
    assert default_image_codec((28, 28, 1)) == "npy" and default_image_codec((32, 32, 3)) == "npy"


def _set_manifest(folder: Path, **changes) -> None:
    path = folder / "manifest.json"
    d = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "config_codec":
            d["config"]["image_codec"] = value
        else:
            d[key] = value
    path.write_text(json.dumps(d))


def test_unknown_codec_in_a_manifest_is_refused_in_one_line(tmp_path):
    write_set(tmp_path, "wds", image_codec="webp")
    _set_manifest(tmp_path, config_codec="avif", image_codec="avif")
    with pytest.raises(ShardError, match=r"image_codec='avif' is not an image codec this lasium reads") as err:
        read_manifest(tmp_path)
    assert "\n" not in str(err.value)
    result = CliRunner().invoke(shards_cli, ["verify", str(tmp_path)])
    assert result.exit_code == 2 and "avif" in result.output and "Traceback" not in result.output


def test_manifest_codec_differing_from_its_config_is_refused(tmp_path):
    write_set(tmp_path, "wds", image_codec="webp")
    _set_manifest(tmp_path, image_codec="png")
    with pytest.raises(ShardError, match="differs from the config"):
        read_manifest(tmp_path)


def test_member_of_another_codec_and_bare_image_shards_are_refused(tmp_path):
    write_set(tmp_path / "png", "wds", image_codec="png")
    write_set(tmp_path / "webp", "wds", image_codec="webp")
    layout = read_manifest(tmp_path / "webp").layout
    with pytest.raises(ShardError, match=r"has support\.png, but the set's image codec is webp"):
        list(iter_shard_tasks(str(tmp_path / "png" / "tiny-000000.tar"), layout=layout))
    bare = tmp_path / "bare-000000.tar"
    bare.write_bytes((tmp_path / "webp" / "tiny-000000.tar").read_bytes())
    with pytest.raises(ShardError, match="needs the set's layout"):
        list(iter_shard_tasks(str(bare)))


def test_codec_limits_are_one_line_errors(tmp_path):
    with pytest.raises(ShardError, match="HDF5 sets hold raw arrays"):
        write_shard(tmp_path, "h", 0, 0, make_batch(0, 3), "hdf5", make_header(3, 3, image_codec="png", format="hdf5"))
    header = make_header(3, 3, image_shape=[8, 8, 2], image_codec="png")
    batch = TaskBatch(np.zeros((3, 3, 1, 8, 8, 2), np.uint8), np.zeros((3, 3, 2, 8, 8, 2), np.uint8), None, [{}] * 3)
    with pytest.raises(ShardError, match="C=2"):
        write_shard(tmp_path, "c", 0, 0, batch, "wds", header)


def test_damaged_image_member_is_named(tmp_path):
    write_set(tmp_path, "wds", image_codec="png")
    c = get_image_codec("png")
    with pytest.raises(
        ShardError, match=r"tiny-000000\.tar: member task-000000000\.support\.png is not a readable PNG"
    ):
        c.decode(b"\x89PNG garbage", (5, 1, 8, 8, 1), "task-000000000.support.png", "tiny-000000.tar")
    wrong = io.BytesIO()
    Image.new("L", (3, 3)).save(wrong, format="PNG")
    with pytest.raises(ShardError, match="is a 3x3 image, the layout needs"):
        c.decode(wrong.getvalue(), (5, 1, 8, 8, 1), "m", "s")


def test_trainer_input_and_lasium_shards_commands_read_an_image_codec_set(tmp_path):
    from lasium.train.shard_access import open_shard_set
    from lasium.train.streaming import TaskStream, check_batch, make_loader

    write_set(tmp_path / "set", "wds", image_codec="webp", compression="gzip")
    folder = tmp_path / "set"
    stream = TaskStream(open_shard_set(folder), 1, seed=0, workers=0, endless=False)
    items = [check_batch(item) for item in make_loader(stream)]
    want = expected_tasks(7)
    for item in items:
        for row, index in enumerate(item["indices"].tolist()):
            assert np.array_equal(item["support"][row].numpy(), want.support[index])
    assert sorted(i for item in items for i in item["indices"].tolist()) == list(range(7))
    runner = CliRunner()
    inspect = runner.invoke(shards_cli, ["inspect", str(folder)])
    assert inspect.exit_code == 0 and "lossless WebP" in inspect.output
    assert runner.invoke(shards_cli, ["verify", str(folder)]).exit_code == 0
    preview = runner.invoke(shards_cli, ["preview", str(folder), "--out", str(tmp_path / "p.png")])
    assert preview.exit_code == 0 and Image.open(tmp_path / "p.png").size[0] > 0


def test_lasium_gen_config_picks_and_checks_the_codec():
    from lasium.errors import ConfigError
    from lasium.generate import GenerationConfig

    auto = GenerationConfig.build(num_tasks=10, out="x", strategy="ro")
    assert auto.resolved_image_codec((84, 84, 3)) == "webp" and auto.resolved_image_codec((28, 28, 1)) == "npy"
    assert (
        GenerationConfig.build(num_tasks=10, out="x", strategy="ro", container="hdf5").resolved_image_codec((84, 84, 3))
        == "npy"
    )
    assert (
        GenerationConfig.build(num_tasks=10, out="x", strategy="ro", image_codec="jpeg").resolved_image_codec(
            (28, 28, 1)
        )
        == "jpeg"
    )
    with pytest.raises(ConfigError, match="unknown --image-codec 'avif'"):
        GenerationConfig.build(num_tasks=10, out="x", strategy="ro", image_codec="avif")
    with pytest.raises(ConfigError, match="applies to --format wds"):
        GenerationConfig.build(num_tasks=10, out="x", strategy="ro", image_codec="png", container="hdf5")


def test_lasium_gen_writes_a_lossless_codec_set_with_the_npy_sets_pixels(tmp_path):
    codec = "webp"  # png goes through the same job path (the round trips above cover its codec)
    from cli_helpers import invoke_gen, tiny_gen_args

    for name, extra in (("raw", []), (codec, ["--image-codec", codec])):
        result = invoke_gen("--strategy", "ro", *tiny_gen_args(tmp_path / name, n_tasks=6, per_shard=3), *extra)
        assert result.exit_code == 0, result.output
    m = read_manifest(tmp_path / codec)
    assert m.image_codec == codec and m.config["image_codec"] == codec
    assert "image_codec" not in read_manifest(tmp_path / "raw").config  # npy sets keep their config as before
    raw, coded = list(iter_tasks(tmp_path / "raw")), list(iter_tasks(tmp_path / codec))
    assert [t.meta for t in raw] == [t.meta for t in coded]
    assert all(np.array_equal(a.support, b.support) and np.array_equal(a.query, b.query) for a, b in zip(raw, coded))
    assert f"support.{IMAGE_CODEC_SUFFIXES[codec]}" in (tmp_path / codec / "README.md").read_text()


@pytest.mark.parametrize("streaming", [False, True])
def test_hugging_face_datasets_reads_webp_members_as_images(tmp_path, monkeypatch, streaming):
    datasets = pytest.importorskip("datasets")  # in the test extra with issue 28's sharing work; skipped without it
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    write_set(tmp_path / "set", "wds", image_codec="webp")
    files = sorted(str(p) for p in (tmp_path / "set").glob("*.tar"))
    rows = list(datasets.load_dataset("webdataset", data_files=files, split="train", streaming=streaming))
    want = expected_tasks(7)
    assert len(rows) == 7
    ways, shots, h, w, _ = want.support[0].shape
    mosaic = np.asarray(rows[5]["support.webp"].convert("L"))  # a datasets Image feature (PIL image)
    assert np.array_equal(mosaic.reshape(ways, h, shots, w).transpose(0, 2, 1, 3), want.support[5][..., 0])


def test_training_on_an_npy_set_and_a_webp_set_together(tmp_path):
    from lasium.train import TaskStream, make_loader, open_shard_set

    write_set(tmp_path / "a", "wds", name="a")
    write_set(tmp_path / "b", "wds", name="b", image_codec="webp", seed=1)
    stream = TaskStream(open_shard_set([str(tmp_path / "a"), str(tmp_path / "b")]), 1, workers=0, endless=False)
    items = list(make_loader(stream))
    want = {0: expected_tasks(7), 1: expected_tasks(7, seed=1)}
    assert len(items) == 14
    for item in items:
        seed = 0 if "/a/" in item["shards"][0] else 1
        assert np.array_equal(item["support"][0].numpy(), want[seed].support[int(item["indices"][0])])


def test_webp_encoder_effort_changes_bytes_never_pixels():
    """lasium-gen writes lossless WebP at the least encoder effort (its writer keeps up with the generator); any
    effort decodes to the same pixels, and the reader needs none of the settings."""
    from lasium.shards import WebpCodec

    default = get_image_codec("webp")
    assert isinstance(default, WebpCodec) and (default.quality, default.method) == (0, 0)
    assert default.save_options() == {"lossless": True, "quality": 0, "method": 0, "exact": True}
    y, x = np.mgrid[0:84, 0:84]
    smooth = np.stack([(x * 3) % 256, (y * 2) % 256, (x + y) % 256], -1).astype(np.uint8)  # compressible content
    images = np.stack([np.roll(smooth, 7 * i, axis=1) for i in range(10)]).reshape(5, 2, 84, 84, 3)
    small = WebpCodec(quality=100, method=6).encode(images)
    fast = default.encode(images)
    assert len(small) <= len(fast)
    for data in (small, fast):
        assert np.array_equal(default.decode(data, images.shape, "support.webp", "s"), images)
