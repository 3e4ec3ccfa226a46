"""A set's card (README.md + preview.png): content, the lasium-shards card command, and tools that ignore it."""

from __future__ import annotations

import hashlib
import json

from click.testing import CliRunner
from PIL import Image
from shards_helpers import write_set

from lasium.shards import build_manifest_from_sidecars, iter_tasks, verify_shard_set
from lasium.shards.card import write_card
from lasium.shards.cli import main


def test_card_describes_the_set_and_pictures_four_tasks(tmp_path):
    write_set(tmp_path, "wds", compression="gzip")
    readme, picture = write_card(tmp_path)
    assert (readme, picture) == (tmp_path / "README.md", tmp_path / "preview.png")
    text = readme.read_text()
    manifest_sha = hashlib.sha256((tmp_path / "manifest.json").read_bytes()).hexdigest()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    total = sum(s["bytes"] for s in manifest["shards"])
    for want in [
        "# Task-shard set `tiny`",
        f"`manifest.json` sha256: `{manifest_sha}`",
        "| tasks | 7 (3-way, 1 support + 2 query",
        "`ro`: LASIUM-RO",
        "alpha = 0.2",
        "weights sha256 `" + "ab" * 32 + "`",
        f"| bytes | {total:,} ",
        "tiny-{000000..000002}.tar.gz",
        "wds.WebDataset(",
        "allow_pickle=False",
        "lasium-train --shards",
        "tar -tzvf tiny-000000.tar.gz",
        "| date | 20",
    ]:
        assert want in text, want
    with Image.open(picture) as im:  # four task grids stacked: taller than one
        height_four = im.size[1]
    from lasium.shards.card import save_preview

    save_preview(list(iter_tasks(tmp_path))[:1], tmp_path / "one.png")
    with Image.open(tmp_path / "one.png") as one:
        assert height_four > 3 * one.size[1]


def test_hdf5_card_shows_h5py(tmp_path):
    write_set(tmp_path, "hdf5")
    text = write_card(tmp_path)[0].read_text()
    assert 'h5py.File("tiny-000000.h5"' in text and "webdataset" not in text


def test_card_of_a_set_without_generator(tmp_path):
    from lasium.train.synthetic import write_synthetic_shards

    write_synthetic_shards(tmp_path, shards=1, tasks_per_shard=3, image_shape=(8, 8, 1), name="syn")
    text = write_card(tmp_path)[0].read_text()
    assert (
        "| generator | none (real images) |" in text
        and "| tasks | 3 (5-way" in text
        and "syn-{000000..000000}.tar" in text
    )


def test_card_command_rewrites_and_verify_index_ignore_it(tmp_path):
    write_set(tmp_path, "wds")
    result = CliRunner().invoke(main, ["card", str(tmp_path)])
    assert result.exit_code == 0 and "README.md" in result.output and "preview.png" in result.output, result.output
    (tmp_path / "README.md").write_text("stale")
    assert CliRunner().invoke(main, ["card", str(tmp_path)]).exit_code == 0
    assert "\n# Task-shard set `tiny`\n" in (tmp_path / "README.md").read_text()
    report = verify_shard_set(tmp_path)
    assert report.ok and not report.notes
    before = (tmp_path / "manifest.json").read_bytes()
    build_manifest_from_sidecars(tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == before


def test_card_without_manifest_is_one_line(tmp_path):
    write_set(tmp_path, "wds", manifest=False)
    result = CliRunner().invoke(main, ["card", str(tmp_path)])
    assert (
        result.exit_code == 2
        and result.output.startswith("error: no manifest.json in")
        and "lasium-shards index" in result.output
    )
    assert not (tmp_path / "README.md").exists() and not (tmp_path / "preview.png").exists()


def test_card_shards_row_describes_the_actual_shards(tmp_path):
    """The shards row counts the shards as written: a set smaller than one shard is one short shard, and a set
    that does not fill its last shard ends with a shorter one (issue 25: a 200-task set read "1 x 1000 tasks")."""
    write_set(tmp_path / "small", "wds", num_tasks=2, tasks_per_shard=1000)
    assert "| shards | 1 x 2 tasks, wds (.tar), files tiny-000000.tar … tiny-000000.tar |" in (
        write_card(tmp_path / "small")[0].read_text()
    )
    write_set(tmp_path / "tail", "hdf5", num_tasks=7, tasks_per_shard=3)
    assert "| shards | 2 x 3 + 1 x 1 tasks, hdf5 (.h5), files tiny-000000.h5 … tiny-000002.h5 |" in (
        write_card(tmp_path / "tail")[0].read_text()
    )
    write_set(tmp_path / "even", "wds", num_tasks=6, tasks_per_shard=3)
    assert "| shards | 2 x 3 tasks, wds" in write_card(tmp_path / "even")[0].read_text()
