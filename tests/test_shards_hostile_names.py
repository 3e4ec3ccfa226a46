"""Hostile shard names in a shared set: every command that reads a set refuses them, nothing runs, nothing is written.

A set from someone else is untrusted input. Its manifest (and each sidecar) names the shard files; a name is a
plain file name inside the set (``<name>-NNNNNN.tar``, ``.tar.gz`` or ``.h5``, ASCII letters, digits, ``_-.``),
never a path, URL, ``pipe:`` command, ``~``, or a Unicode look-alike. Each hostile name below is planted in a
valid set's manifest (or sidecar) and fed to ``lasium-shards verify|inspect|preview|card|index`` and
``lasium-train``, from inside the set's folder (``.``, what the set's card tells users to type), from outside it,
and over HTTP: each exits 2 with one ``error:`` line, no command runs (the planted commands would create
``PWNED``), and no file appears anywhere in the test's folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fault_server import static_server
from shards_helpers import write_set

from lasium.shards.cli import main as shards_main
from lasium.train.cli import main as train_main
from lasium.train.synthetic import write_synthetic_shards

MARK = "PWNED"
HOSTILE = [
    f"pipe:touch {MARK};cat tiny-000000.tar",  # the reported attack: a pipe: URL once joined to '.'
    f"pipe:touch {MARK}",
    f"pipe:sh -c 'touch {MARK}' tiny-000000.tar",
    f"|touch {MARK}",
    f"tiny-000000.tar;touch {MARK}",
    f"$(touch {MARK})tiny-000000.tar",
    f"`touch {MARK}`-000000.tar",
    "../tiny-000000.tar",
    "../../etc/tiny-000000.tar",
    "..%2ftiny-000000.tar",
    "..\\tiny-000000.tar",
    "....//tiny-000000.tar",
    "sub/../tiny-000000.tar",
    "./tiny-000000.tar",
    ".tiny-000000.tar",
    "..",
    "/etc/passwd",
    "/tmp/tiny-000000.tar",
    "~/tiny-000000.tar",
    "~root/tiny-000000.tar",
    "file:///etc/passwd",
    "file:tiny-000000.tar",
    "http://127.0.0.1:9/tiny-000000.tar",
    "https://example.invalid/tiny-000000.tar",
    "s3://bucket/tiny-000000.tar",
    "C:tiny-000000.tar",
    "tiny-000000.tar\x00.txt",
    "tiny-000000.tar\n",
    "tiny\n-000000.tar",
    "tiny-000000.tar\r",
    "tiny-000000.tar ",
    "\ttiny-000000.tar",
    "-tiny-000000.tar",
    "ｐｉｐｅ:touch PWNED",  # fullwidth letters
    "tiny-００００００.tar",  # fullwidth digits
    "tiny-٠٠٠٠٠٠.tar",  # Arabic-Indic digits (\d would match them)
    "tіny-000000.tar",  # Cyrillic і
    "tiny\u2215x-000000.tar",  # division slash
    "\u2024\u2024\u2215tiny-000000.tar",  # one-dot leaders and a division slash
    "tiny-000000.tar\u200b",  # zero-width space
    "other-000000.tar",  # a well-formed name of another set
    "tiny-000000.h5",  # a well-formed name of another container
    "",
]
NOT_STRINGS = [None, 7, ["tiny-000000.tar"], {"file": "tiny-000000.tar"}]


def _plant_in_manifest(folder: Path, name) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["shards"][0]["file"] = name
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _plant_in_sidecar(folder: Path, name) -> None:
    sidecar = folder / "tiny-000000.tar.json"
    record = json.loads(sidecar.read_text())
    record["shard"]["file"] = name
    sidecar.write_text(json.dumps(record))
    (folder / "manifest.json").unlink()


def _snapshot(*roots: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_refusal(result, where: str) -> None:
    assert result.exit_code == 2, f"{where}: exit {result.exit_code}: {result.output}"
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{where}: {result.output}"
    assert "Traceback" not in result.output


def _name_refusal(result, where: str) -> None:
    """One line that refuses the planted name (not some other failure of the set)."""
    _one_line_refusal(result, where)
    assert "refusing" in result.output, f"{where}: {result.output}"


def _commands(source: str, out: Path, *, card: bool, index: bool = False) -> list[tuple[object, list[str]]]:
    """The commands that read a set: ``card`` (local sets with a manifest) and ``index`` (rebuilds the manifest
    from the sidecars) where they apply."""
    commands = [
        (shards_main, ["verify", source, "--no-progress"]),
        (shards_main, ["inspect", source]),
        (shards_main, ["inspect", source, "--json"]),
        (shards_main, ["preview", source, "--tasks", "1", "--out", str(out / "p.png")]),
        (
            train_main,
            ["--shards", source, "--algo", "protonets", "--iterations", "1", "--workers", "0", "--val-every", "0"]
            + ["--val-dataset", "none", "--device", "cpu", "--out", str(out / "run"), "--quiet"],
        ),
    ]
    if card:
        commands.append((shards_main, ["card", source]))
    if index:
        commands.append((shards_main, ["index", source]))
    return commands


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """(the crafted set's folder, an output folder outside it); the process runs inside the set's folder."""
    folder = tmp_path / "set"
    write_synthetic_shards(folder, shards=1, tasks_per_shard=3, ways=2, queries=1, image_shape=(16, 16, 1), name="tiny")
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(folder)
    return folder, out


def _check_all_refused(commands, roots: tuple[Path, ...], label: str) -> None:
    before = _snapshot(*roots)
    for command, args in commands:
        result = CliRunner().invoke(command, args)
        _name_refusal(result, f"{label}: {' '.join(args[:2])}")
        assert not [p for r in roots for p in r.rglob(MARK)], f"{label}: a command ran"
        assert _snapshot(*roots) == before, f"{label}: {' '.join(args[:2])} wrote or changed files"


@pytest.mark.parametrize("name", HOSTILE + NOT_STRINGS, ids=repr)
def test_manifest_name_refused_by_every_command(workspace, name):
    folder, out = workspace
    _plant_in_manifest(folder, name)
    roots = (folder.parent,)
    _check_all_refused(_commands(".", out, card=True), roots, "inside")
    _check_all_refused(_commands(str(folder), out, card=True), roots, "outside")
    _check_all_refused(_commands(str(folder / "manifest.json"), out, card=False), roots, "manifest path")
    assert not (folder / MARK).exists() and not (Path.cwd() / MARK).exists()


@pytest.mark.parametrize("name", HOSTILE[:12] + HOSTILE[-9:] + NOT_STRINGS[:2], ids=repr)
def test_sidecar_name_refused_by_every_command(workspace, name):
    """Without a manifest the set is read from its sidecars: the same names are refused there."""
    folder, out = workspace
    _plant_in_sidecar(folder, name)
    roots = (folder.parent,)
    _check_all_refused(_commands(".", out, card=False, index=True), roots, "sidecar inside")
    _check_all_refused(_commands(str(folder), out, card=False, index=True), roots, "sidecar outside")


@pytest.fixture
def served(workspace):
    """The crafted set's folder served on 127.0.0.1; yields (folder, output folder, manifest URL)."""
    folder, out = workspace

    with static_server(folder) as base:
        yield folder, out, f"{base}/manifest.json"


@pytest.mark.parametrize("name", HOSTILE + NOT_STRINGS[:2], ids=repr)
def test_manifest_name_refused_over_http(served, name):
    folder, out, url = served
    _plant_in_manifest(folder, name)
    _check_all_refused(_commands(url, out, card=False), (folder.parent,), "http")


def test_the_untouched_set_passes_every_command(workspace):
    """The control: the same commands on the set before any name is planted succeed (so a refusal above is
    the name's doing), and the planted commands really would create the mark when run by a shell."""
    import subprocess

    folder, out = workspace
    for command, args in _commands(".", out, card=True):
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 0, f"{args[:2]}: {result.output}"
    subprocess.run(["/bin/sh", "-c", f"touch {MARK}"], cwd=out, check=True)
    assert (out / MARK).exists()


def test_pipe_typed_by_the_user_still_works(tmp_path):
    """pipe: from the user's own command line is honoured: an argument list (no shell) for a plain command."""
    from lasium.shards import iter_tasks
    from lasium.shards.streams import pipe_argv

    write_set(tmp_path / "s", "wds", num_tasks=3, tasks_per_shard=3)
    shard = tmp_path / "s" / "tiny-000000.tar"
    assert len(list(iter_tasks(f"pipe:cat {shard}"))) == 3
    assert pipe_argv(f"cat {shard}") == ["cat", str(shard)]
    assert pipe_argv("curl -s http://h/x.tar | gunzip")[:2] == ["/bin/sh", "-c"]
    assert pipe_argv("cat 'a;b'") == ["cat", "a;b"]


def test_resume_does_not_run_a_pipe_source_from_the_run_config(tmp_path):
    """A run config that names a pipe: source (a shared run folder) is not run on --resume unless retyped."""

    write_synthetic_shards(tmp_path / "syn", shards=1, tasks_per_shard=8, image_shape=(16, 16, 1), name="syn")
    shard = tmp_path / "syn" / "syn-000000.tar"
    args = ["--algo", "protonets", "--meta-batch", "2", "--workers", "0", "--val-dataset", "none", "--device", "cpu"]
    args += ["--checkpoint-every", "1", "--quiet", "--out", str(tmp_path / "run")]
    first = CliRunner().invoke(train_main, ["--shards", f"pipe:cat {shard}", "--iterations", "1", *args])
    assert first.exit_code == 0, first.output
    refused = CliRunner().invoke(train_main, ["--resume", "--iterations", "2", *args])
    _one_line_refusal(refused, "resume")
    assert "pipe:" in refused.output and "--shards" in refused.output
    again = CliRunner().invoke(train_main, ["--resume", "--iterations", "2", "--shards", f"pipe:cat {shard}", *args])
    assert again.exit_code == 0, again.output
