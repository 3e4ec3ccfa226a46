"""What the shard-set fuzz campaign (``tests/fuzz_sets.py``) found, one test per finding, so each stays fixed.

Each damaged set is fed to the commands the campaign found failing; every one must end with one ``error:`` line
(exit 2) or, for ``verify``, ``bad:`` lines (exit 1), and no traceback.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from shards_helpers import write_set

from lasium.errors import ShardError, one_line
from lasium.shards import iter_tasks
from lasium.shards.cli import main as shards_main
from lasium.shards.format import parse_json
from lasium.train.cli import main as train_main


def run(cli, *args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_refused(result, *texts: str) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    for text in texts:
        assert text in lines[0], lines[0]
    return lines[0]


def every_reader(folder: Path, tmp_path: Path):
    yield run(shards_main, "inspect", folder)
    yield run(shards_main, "inspect", folder, "--json")
    yield run(shards_main, "preview", folder, "--out", tmp_path / "p.png")
    yield run(
        train_main,
        *("--shards", folder, "--algo", "protonets", "--iterations", "1", "--workers", "0", "--val-dataset", "none"),
        *("--device", "cpu", "--out", tmp_path / "run", "--quiet"),
    )


@pytest.mark.parametrize("where", ["manifest", "sidecar"])
def test_json_nested_too_deep_is_one_line(tmp_path, where):
    """Found: json.loads raised RecursionError (a traceback in every command) on ``[[[[...]]]]``."""
    folder = tmp_path / "set"
    write_set(folder, "wds")
    if where == "sidecar":
        (folder / "manifest.json").unlink()
    target = folder / ("manifest.json" if where == "manifest" else "tiny-000001.tar.json")
    target.write_text('{"format": ' + "[" * 200_000 + "]" * 200_000 + "}")
    for result in every_reader(folder, tmp_path):
        assert_refused(result, "nested more than 64 levels")
    with pytest.raises(ValueError, match="nested more than 64"):
        parse_json("[" * 65 + "]" * 65)
    assert parse_json("[" * 64 + "]" * 64)[0][0] is not None  # 64 levels are fine


def test_a_field_of_the_wrong_json_type_is_one_line(tmp_path):
    """Found: a manifest whose "container" is an object raised TypeError (unhashable dict)."""
    folder = tmp_path / "set"
    write_set(folder, "wds")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["container"] = {"a": 1}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for result in every_reader(folder, tmp_path):
        assert_refused(result, "unknown container")


@pytest.mark.parametrize("strategy", [{"a": 1}, [], 7])
def test_a_strategy_that_is_not_a_name_records_no_task_source(tmp_path, strategy):
    """Found: a manifest whose config "strategy" was an object or a list raised TypeError (unhashable) in
    lasium-train's reading of the recorded task source; such a set records no source and trains as real images."""
    from lasium.train.shard_access import open_shard_set

    folder = tmp_path / "set"
    write_set(folder, "wds")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["config"].pop("source", None)
    manifest["config"]["strategy"] = strategy
    (folder / "manifest.json").write_text(json.dumps(manifest))
    shard_set = open_shard_set(folder)
    assert shard_set.task_sources == {None} and "--augment auto treats them as real images" in shard_set.notes[-1]


def test_index_over_a_manifest_that_is_a_folder_is_one_line(tmp_path):
    """Found: lasium-shards index raised IsADirectoryError when manifest.json was a folder."""
    folder = tmp_path / "set"
    write_set(folder, "wds", manifest=False)
    (folder / "manifest.json").mkdir()
    assert_refused(run(shards_main, "index", folder), "manifest.json is a folder, not a file")
    assert (folder / "manifest.json").is_dir()


def _rewrite_member(shard: Path, name: str, data: bytes | None = None, new_name: str | None = None) -> None:
    """Rewrite one member of a tar shard (its data, or its name) with tarfile, keeping the rest."""
    members = []
    with tarfile.open(shard) as tar:
        for info in tar.getmembers():
            content = tar.extractfile(info).read()
            if info.name == name:
                content = data if data is not None else content
                info.name = new_name or info.name
                info.size = len(content)
            members.append((info, content))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content))
    shard.write_bytes(out.getvalue())


def test_an_npy_header_numpy_cannot_tokenize_is_one_line(tmp_path):
    """Found: an npy header with an unclosed bracket made numpy raise tokenize.TokenError (a traceback)."""
    folder = tmp_path / "set"
    write_set(folder, "wds", manifest=False)
    for sidecar in folder.glob("*.json"):
        sidecar.unlink()  # bare shards: nothing vouches for them, so the decoder meets the damage
    shard = folder / "tiny-000000.tar"
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (3, 1, 4, 4, 1"
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(48)
    _rewrite_member(shard, "task-000000000.support.npy", data=npy)
    with pytest.raises(ShardError, match="task-000000000.support.npy has a corrupt npy header"):
        list(iter_tasks(folder))
    assert_refused(run(shards_main, "preview", folder, "--out", tmp_path / "p.png"), "corrupt npy header")


def test_control_characters_from_a_set_never_reach_the_terminal(tmp_path):
    """Found: a tar member named with a newline made verify print a problem over two lines."""
    folder = tmp_path / "set"
    write_set(folder, "wds")
    _rewrite_member(folder / "tiny-000000.tar", "task-000000000.meta.json", new_name="evil\n\x1b[2Jbad: fake")
    result = run(shards_main, "verify", folder, "--no-progress")
    assert result.exit_code == 1
    assert all(line.startswith("bad: ") for line in result.stdout.splitlines()), result.stdout
    assert "\x1b" not in result.output and "evil\\n\\x1b[2Jbad: fake" in result.stdout
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["generator"]["name"] = "gan\n\x1b[31mred"
    manifest["tool_version"] = "0.1\u202eevil"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = run(shards_main, "inspect", folder)
    assert result.exit_code == 0 and "\x1b" not in result.output and "\u202e" not in result.output
    assert "name=gan\\n\\x1b[31mred" in result.output and "0.1\\u202eevil" in result.output
    assert one_line("a\nb\tc\x85d") == "a\\nb\\tc\\x85d"
    assert str(ShardError("line one\nline two")) == "line one\\nline two"


def test_a_damaged_shard_of_a_partial_set_is_reported_not_left_out(tmp_path):
    """Found: without a manifest, a shard whose size differed from its sidecar was left out as if missing, so
    verify --allow-partial said ok; it is now kept, and its size and sha256 checked like any other shard's."""
    folder = tmp_path / "set"
    write_set(folder, "wds", manifest=False)
    shard = folder / "tiny-000001.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[:4000] + b"&w\x90j" + data[4000:])
    result = run(shards_main, "verify", folder, "--no-progress", "--allow-partial")
    assert result.exit_code == 1 and "bad: tiny-000001.tar: size 10244 bytes, the manifest says 10240" in result.stdout
    with pytest.raises(ShardError, match="tiny-000001.tar is 10244 bytes, the manifest says 10240"):
        list(iter_tasks(folder, allow_partial=True))
    train = every_reader(folder, tmp_path)
    for result in (next(train), next(train)):  # inspect describes the set as it is
        assert result.exit_code == 0
    assert_refused(next(train), "tiny-000001.tar is 10244 bytes")  # preview: its 4th task is in shard 1


def test_a_scalar_hdf5_dataset_is_one_line(tmp_path):
    """Found: an HDF5 shard whose 'support' was a scalar dataset made verify raise IndexError (a traceback)."""
    import h5py

    folder = tmp_path / "set"
    write_set(folder, "hdf5")
    with h5py.File(folder / "tiny-000002.h5", "r+") as f:
        del f["support"]
        f["support"] = np.uint8(7)
    result = run(shards_main, "verify", folder, "--no-progress")
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "bad: tiny-000002.h5:" in result.stdout and "Traceback" not in result.output, result.output
    from lasium.shards.reader import iter_hdf5_shard

    with pytest.raises(ShardError, match="dataset 'support' is a scalar"):
        list(iter_hdf5_shard(str(folder / "tiny-000002.h5")))


def _tar_with_header_field(shard: Path, offset: int, value: bytes) -> None:
    """Set a field of the first member's header and fix the header's checksum (so the damage gets past it)."""
    data = bytearray(shard.read_bytes())
    data[offset : offset + len(value)] = value
    data[148:156] = b"        "
    data[148:156] = b"%06o\x00 " % sum(data[:512])
    shard.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "field,error",
    [  # base-256 sizes: 64 GiB (read in bounded pieces: the file ends first), and the largest the field holds
        (b"\x80" + b"\x00" * 6 + b"\x10" + b"\x00" * 4, "tar truncated inside member task-000000000.support.npy"),
        (b"\xff" * 12, "corrupt tar header \\(its size field says a member of"),
    ],
)
def test_a_huge_tar_size_field_is_one_line(tmp_path, field, error):
    """Found: a base-256 size field too large for read() raised OverflowError (a traceback in verify); a merely
    large one made read() allocate it (MemoryError)."""
    folder = tmp_path / "set"
    write_set(folder, "wds", manifest=False)
    for sidecar in folder.glob("*.json"):
        sidecar.unlink()
    _tar_with_header_field(folder / "tiny-000000.tar", 124, field)
    with pytest.raises(ShardError, match=error):
        list(iter_tasks(folder))


def test_pax_headers_that_would_loop_or_lie_are_one_line(tmp_path):
    """A pax record of length 0 once looped forever; a pax size that is not a number raised ValueError."""
    from lasium.shards.tario import iter_tar_members

    def pax_tar(record: bytes) -> io.BytesIO:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo("././@PaxHeader")
            info.type, info.size = tarfile.XHDTYPE, len(record)
            tar.addfile(info, io.BytesIO(record))
            info = tarfile.TarInfo("task-000000000.meta.json")
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
        out.seek(0)
        return out

    with pytest.raises(ShardError, match="corrupt pax header in tar \\(record length 0\\)"):
        list(iter_tar_members(pax_tar(b"0 path=x\n"), "x.tar"))
    with pytest.raises(ShardError, match="corrupt pax header in tar \\(size 'many'\\)"):
        list(iter_tar_members(pax_tar(b"13 size=many\n"), "x.tar"))
    with pytest.raises(ShardError, match="a pax header says a member of -5 bytes"):
        list(iter_tar_members(pax_tar(b"11 size=-5\n"), "x.tar"))
