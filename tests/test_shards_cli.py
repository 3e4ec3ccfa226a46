"""lasium-shards: inspect, verify, preview, index (click CliRunner, and the installed console script)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from shards_helpers import write_set

from lasium.shards.cli import main


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def shard_set(tmp_path) -> Path:
    folder = tmp_path / "set"
    write_set(folder, "wds", latents=True)
    return folder


def test_help_has_examples():
    for args in ([], ["inspect"], ["verify"], ["preview"], ["index"]):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Examples:" in result.output and "lasium-shards" in result.output


def test_inspect(shard_set):
    result = run("inspect", shard_set)
    assert result.exit_code == 0, result.output
    out = result.output
    total = sum(p.stat().st_size for p in shard_set.glob("*.tar"))
    for text in [
        "WebDataset",
        "7 of 7 in 3 shards (3 per shard)",
        "3-way, 1 support + 2 query",
        "latents yes",
        f"{total / 7:,.0f} bytes per task",
        "kind=gan",
        "latent_dim=5",
        "alpha = 0.2",
        "strategy   ro",
    ]:
        assert text in out, text
    as_json = json.loads(run("inspect", shard_set, "--json").output)
    assert as_json == json.loads((shard_set / "manifest.json").read_text())


def test_verify_ok_and_bad(shard_set):
    result = run("verify", shard_set)
    assert result.exit_code == 0 and result.output.startswith("ok: 3 shards, 7 tasks")
    (shard_set / "tiny-000000.tar").unlink()
    data = bytearray((shard_set / "tiny-000002.tar").read_bytes())
    data[1100] ^= 1
    (shard_set / "tiny-000002.tar").write_bytes(bytes(data))
    result = run("verify", shard_set)
    assert result.exit_code == 1
    assert "bad: tiny-000000.tar: missing" in result.output
    assert "bad: tiny-000002.tar: sha256" in result.output
    assert "tiny-000001.tar" not in result.output


def test_bad_input_is_one_line_exit_2(tmp_path, shard_set):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "manifest.json").write_text("{oops")
    for command in ("inspect", "verify", "preview", "index"):
        for folder, message in (
            (tmp_path / "missing", "does not exist"),
            (tmp_path / "empty", "no"),
            (tmp_path / "junk", "manifest"),
        ):
            if command == "index" and folder.name == "junk":
                continue  # index does not read the manifest, it rebuilds it
            result = run(command, folder)
            assert result.exit_code == 2, (command, folder, result.output)
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (command, result.output)


def test_preview(shard_set, tmp_path):
    out = tmp_path / "p.png"
    result = run("preview", shard_set, "--tasks", "2", "--start", "2", "--out", out)
    assert result.exit_code == 0 and "tasks 2, 3" in result.output
    two = Image.open(out)
    run("preview", shard_set, "--tasks", "4", "--out", out)
    four = Image.open(out)
    assert four.width == two.width and four.height > 1.9 * two.height  # one grid per task, stacked
    assert not list(tmp_path.glob(".*.tmp"))


def test_index(shard_set):
    original = (shard_set / "manifest.json").read_text()
    (shard_set / "manifest.json").unlink()
    result = run("index", shard_set)
    assert result.exit_code == 0 and "3 wds shards, 7 tasks" in result.output
    assert (shard_set / "manifest.json").read_text() == original
    (shard_set / "tiny-000001.tar.json").unlink()
    result = run("index", shard_set)
    assert result.exit_code == 2 and "missing tasks 3..5" in result.output
    result = run("index", shard_set, "--allow-gaps")
    assert result.exit_code == 0 and "4 tasks (of 7: partial set)" in result.output


def test_console_script(shard_set):
    exe = shutil.which("lasium-shards")
    if exe is None:
        pytest.skip("lasium-shards console script not installed (pip install -e .)")
    ok = subprocess.run([exe, "verify", str(shard_set), "--no-progress"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 3 shards"), ok.stderr
    missing = subprocess.run([exe, "inspect", str(shard_set / "nope")], capture_output=True, text=True, timeout=120)
    assert (
        missing.returncode == 2 and missing.stderr.strip().startswith("error: ") and "Traceback" not in missing.stderr
    )
