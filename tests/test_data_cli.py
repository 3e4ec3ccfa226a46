"""``lasium-data`` commands: info, preview, errors as one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from lasium.data.cli import main, parse_image_size
from lasium.data.miniature import write_miniature_omniglot
from lasium.errors import ConfigError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "letters"
    for c in range(6):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(8):
            Image.new("L", (20, 20), 30 * c + i).save(root / f"c{c}" / f"{i}.png")
    return root


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0])  # progress bars may come before it
    return errors[0]


def test_help_teaches_with_examples() -> None:
    for args in ([], ["info"], ["download"], ["preview"]):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Example" in result.output


def test_info_imagefolder_table_and_json(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = run("info", f"imagefolder:{folder}", "--cache-dir", str(cache), "--image-size", "16x12")
    assert result.exit_code == 0, result.output
    assert f"imagefolder:{folder.resolve()}" in result.stdout and "(written)" in result.stdout
    rows = {
        line.split()[0]: line.split()[1:4]
        for line in result.stdout.splitlines()
        if line.split()[:1] in (["train"], ["val"], ["test"])
    }
    assert rows == {"train": ["4", "32", "16x12x1"], "val": ["1", "8", "16x12x1"], "test": ["1", "8", "16x12x1"]}
    again = run("info", f"imagefolder:{folder}", "--cache-dir", str(cache), "--image-size", "16x12", "--json")
    report = json.loads(again.stdout)
    assert report["cache_status"] == "hit" and report["image_shape"] == [16, 12, 1]
    assert report["splits"]["train"]["classes"] == 4 and report["cache"].startswith(str(cache))


def test_preview_writes_a_png(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "episodes.png"
    result = run(
        "preview",
        f"imagefolder:{folder}",
        "--split",
        "train",
        "--ways",
        "3",
        "--shots",
        "2",
        "--queries",
        "3",
        "--count",
        "2",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.width > 5 * 28 and img.height > 2 * 3 * 28


def test_user_errors_are_one_line(tmp_path: Path, folder: Path) -> None:
    line = one_error_line(
        run("info", "omniglot", "--data-root", str(tmp_path / "nowhere"), "--cache-dir", str(tmp_path / "c"))
    )
    assert "Omniglot not found" in line and "lasium-data download omniglot" in line
    write_miniature_omniglot(tmp_path / "mini")
    zip_path = tmp_path / "mini" / "omniglot" / "images_background.zip"
    zip_path.write_bytes(zip_path.read_bytes()[:500])
    line = one_error_line(
        run("info", "omniglot", "--data-root", str(tmp_path / "mini"), "--cache-dir", str(tmp_path / "c"))
    )
    assert "images_background.zip is not a readable zip" in line
    (folder / "c1" / "x.txt").write_text("stray")
    assert "x.txt is not an image file" in one_error_line(
        run("info", f"imagefolder:{folder}", "--cache-dir", str(tmp_path / "c"))
    )
    assert "unknown dataset" in one_error_line(run("info", "cifar"))
    assert "--image-size" in one_error_line(run("info", "omniglot", "--image-size", "big"))
    (folder / "c1" / "x.txt").unlink()
    line = one_error_line(
        run("preview", f"imagefolder:{folder}", "--split", "val", "--ways", "5", "--cache-dir", str(tmp_path / "c"))
    )
    assert "fewer than ways=5" in line
    assert not list((tmp_path / "c").rglob("*.tmp"))


def test_parse_image_size() -> None:
    assert (
        parse_image_size("28") == (28, 28) and parse_image_size("32x48") == (32, 48) and parse_image_size(None) is None
    )
    with pytest.raises(ConfigError):
        parse_image_size("28x")
