"""Binary (non-UTF-8) files where lasium expects JSON: one ``error:`` line and exit 2, never a traceback (issue 25).

A set from someone else, or one damaged on disk, may hold a ``manifest.json`` or a sidecar that is not text at all.
Every command that reads a set says so in one line; ``index``, which rebuilds the manifest from the sidecars, just
rebuilds a binary manifest. A run folder's files are covered too: a binary checkpoint ``config.json`` is one line
for ``lasium-train --resume`` and ``lasium-eval``; a binary or torn ``metrics.jsonl`` (a kill mid-record) loses
only its unreadable lines on ``--resume``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fault_server import static_server

from lasium.evaluate.cli import main as eval_main
from lasium.jsonl_log import JsonLinesLog, read_json_lines
from lasium.shards.cli import main as shards_main
from lasium.train.cli import main as train_main
from lasium.train.synthetic import write_synthetic_shards

BINARY = b'\xff\xfe\x00\x80{"format": \xc3\x28\x9f binary'


def _one_line(result, where: str, needle: str) -> None:
    assert result.exit_code == 2, f"{where}: exit {result.exit_code}: {result.output}"
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{where}: {result.output}"
    assert "Traceback" not in result.output and needle in lines[0], f"{where}: {result.output}"


def _train_args(source: str, out: Path, *more: str) -> list[str]:
    return ["--shards", source, "--algo", "protonets", "--iterations", "1", "--workers", "0", "--val-every", "0"] + [
        "--val-dataset",
        "none",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
        *more,
    ]


def _reading_commands(source: str, out: Path) -> list[tuple[object, list[str]]]:
    return [
        (shards_main, ["verify", source, "--no-progress"]),
        (shards_main, ["inspect", source]),
        (shards_main, ["inspect", source, "--json"]),
        (shards_main, ["preview", source, "--tasks", "1", "--out", str(out / "p.png")]),
        (train_main, _train_args(source, out / "run")),
    ]


@pytest.fixture
def tiny_set(tmp_path) -> tuple[Path, Path]:
    folder = tmp_path / "set"
    write_synthetic_shards(folder, shards=2, tasks_per_shard=3, ways=2, queries=1, image_shape=(16, 16, 1), name="tiny")
    out = tmp_path / "out"
    out.mkdir()
    return folder, out


def test_binary_manifest_is_one_line_in_every_command(tiny_set):
    folder, out = tiny_set
    good = (folder / "manifest.json").read_bytes()
    (folder / "manifest.json").write_bytes(BINARY)
    for source in (str(folder), str(folder / "manifest.json")):
        for command, args in _reading_commands(source, out):
            _one_line(CliRunner().invoke(command, args), " ".join(args[:2]), "is not UTF-8 text")
    _one_line(CliRunner().invoke(shards_main, ["card", str(folder)]), "card", "is not UTF-8 text")
    assert not (out / "p.png").exists() and not (out / "run").exists()
    # index rebuilds the manifest from the sidecars, as the message above tells the user to do
    result = CliRunner().invoke(shards_main, ["index", str(folder)])
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "manifest.json").read_text()) == json.loads(good)


def test_binary_sidecar_is_one_line_in_every_command(tiny_set):
    """Without a manifest the set is read from its sidecars: a binary one stops every command in one line."""
    folder, out = tiny_set
    (folder / "manifest.json").unlink()
    (folder / "tiny-000001.tar.json").write_bytes(BINARY)
    commands = _reading_commands(str(folder), out) + [(shards_main, ["index", str(folder)])]
    for command, args in commands:
        result = CliRunner().invoke(command, args)
        _one_line(result, " ".join(args[:2]), "tiny-000001.tar.json is not UTF-8 text")
        assert "rerun the lasium-gen command" in result.output  # not "rebuild it with index": index reads it
    assert not (folder / "manifest.json").exists() and not (out / "run").exists()


def test_binary_manifest_over_http_is_one_line(tiny_set):
    folder, out = tiny_set
    (folder / "manifest.json").write_bytes(BINARY)

    with static_server(folder) as base:
        url = f"{base}/manifest.json"
        for command, args in _reading_commands(url, out):
            _one_line(CliRunner().invoke(command, args), " ".join(args[:2]), "manifest")


def test_binary_files_of_a_run_folder(tiny_set):
    """A binary checkpoint config is one line for --resume and lasium-eval; a binary or torn metrics.jsonl loses
    only its unreadable lines on --resume (the run goes on, with a note)."""
    folder, out = tiny_set
    run = out / "run"
    first = CliRunner().invoke(train_main, _train_args(str(folder), run))
    assert first.exit_code == 0, first.output
    metrics = run / "metrics.jsonl"
    records = read_json_lines(metrics)
    with open(metrics, "ab") as f:
        f.write(BINARY + b"\n" + b'{"step": 1, "split": "tra')  # a damaged line, then a record torn by a kill
    resumed = CliRunner().invoke(
        train_main, ["--out", str(run), "--resume", "--iterations", "2", "--shards", str(folder), "--quiet"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert "dropped 2 unreadable line(s)" in resumed.output and "Traceback" not in resumed.output
    assert [r["step"] for r in read_json_lines(metrics)] == [r["step"] for r in records] + [2]
    (run / "last" / "config.json").write_bytes(BINARY)
    again = CliRunner().invoke(
        train_main, ["--out", str(run), "--resume", "--iterations", "3", "--shards", str(folder)]
    )
    _one_line(again, "train --resume", "config.json is not valid JSON")
    scored = CliRunner().invoke(eval_main, ["--checkpoint", str(run), "--tasks", "2", "--out", str(out / "e.json")])
    _one_line(scored, "eval", "config.json is not valid JSON")


def test_json_lines_log_skips_what_is_not_a_record(tmp_path):
    """The log shared by lasium-fit (losses.jsonl) and lasium-train (metrics.jsonl)."""
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"epoch": 1}\n' + BINARY + b'\n[1, 2]\n\n{"epoch": "x"}\n{"epoch": 2}\n{"epoch": 3}\n{"epo')
    assert read_json_lines(path) == [{"epoch": 1}, {"epoch": "x"}, {"epoch": 2}, {"epoch": 3}]
    log = JsonLinesLog(path, key="epoch", keep_until=2)
    log.write({"epoch": 3, "redone": True})
    log.close()
    assert read_json_lines(path) == [{"epoch": 1}, {"epoch": 2}, {"epoch": 3, "redone": True}]
