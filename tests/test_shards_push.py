"""``lasium-shards push DIR DEST``: verify, copy to an fsspec destination, verify there; then ``verify`` and
``lasium-train --shards`` read the set from the same URL (file://, memory://, and over HTTP from where it landed).
Refusals: a different set at DEST, a damaged set, foreign shards at DEST, a scheme without its backend."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from cli_helpers import one_line_error
from click.testing import CliRunner
from fault_server import static_server
from shards_helpers import write_set

from lasium.shards.card import write_card
from lasium.shards.cli import main
from lasium.shards.push import push_set
from lasium.train.synthetic import write_synthetic_shards


def _synthetic(folder: Path, compression: str = "gzip", seed: int = 0) -> Path:
    write_synthetic_shards(
        folder, shards=2, tasks_per_shard=4, image_shape=(16, 16, 1), name="syn", compression=compression, seed=seed
    )
    write_card(folder)
    return folder


def _train(source: str, out: Path):
    from lasium.train.cli import main as train_main

    args = ["--shards", source, "--algo", "protonets", "--iterations", "2", "--meta-batch", "2", "--workers", "0"]
    return CliRunner().invoke(
        train_main, [*args, "--val-dataset", "none", "--device", "cpu", "--out", str(out), "--quiet"]
    )


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_push_to_a_file_url_then_verify_and_train_from_it(tmp_path, compression):
    src = _synthetic(tmp_path / "src", compression)
    dest = f"file://{tmp_path / 'team' / 'syn'}"
    result = CliRunner().invoke(main, ["push", str(src), dest])
    assert result.exit_code == 0, result.output
    assert "copied 7 files" in result.output and "verified there: 2 shards, 8 tasks" in result.output
    copied = tmp_path / "team" / "syn"
    assert {p.name: p.read_bytes() for p in copied.iterdir()} == {p.name: p.read_bytes() for p in src.iterdir()}
    verified = CliRunner().invoke(main, ["verify", dest, "--no-progress"])
    assert verified.exit_code == 0 and "ok: 2 shards, 8 tasks" in verified.output, verified.output
    assert CliRunner().invoke(main, ["verify", f"{dest}/manifest.json"]).exit_code == 0
    trained = _train(dest, tmp_path / "run")
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "run" / "last" / "config.json").is_file()
    again = CliRunner().invoke(main, ["push", str(src), dest])  # the same set: verified, not copied again
    assert again.exit_code == 0 and "already there" in again.output, again.output


def test_push_to_an_fsspec_store_and_read_it_back_over_http(tmp_path):
    """memory:// stands for any object store (s3://, gs://, hf://): the copy and the verification there go through
    fsspec only; then the pushed folder, served over HTTP, is verified and trained from by URL."""
    import fsspec

    src = _synthetic(tmp_path / "src")
    report = push_set(src, "memory://bucket/sets/syn")
    assert report.verified is not None and report.verified.ok and report.verified.tasks_checked == 8
    mem = fsspec.filesystem("memory")
    assert mem.cat("/bucket/sets/syn/manifest.json") == (src / "manifest.json").read_bytes()
    for url in ("memory://bucket/sets/syn", "memory://bucket/sets/syn/manifest.json"):  # folder or manifest URL
        assert CliRunner().invoke(main, ["verify", url]).exit_code == 0
    mem.rm("/bucket/sets/syn", recursive=True)

    push_set(src, str(tmp_path / "www" / "syn"))  # a plain path works too
    with static_server(tmp_path / "www") as base:
        verified = CliRunner().invoke(main, ["verify", f"{base}/syn/manifest.json"])
        assert verified.exit_code == 0 and "8 tasks" in verified.output, verified.output
        assert _train(f"{base}/syn", tmp_path / "run").exit_code == 0  # the folder's URL, as pushed


def test_push_refuses_a_destination_holding_a_different_set(tmp_path):
    dest = f"file://{tmp_path / 'dest'}"
    assert CliRunner().invoke(main, ["push", str(_synthetic(tmp_path / "a")), dest]).exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "dest").iterdir()}
    other = _synthetic(tmp_path / "b", seed=1)
    line = one_line_error(CliRunner().invoke(main, ["push", str(other), dest]))
    assert "already holds a different set" in line
    assert {p.name: p.read_bytes() for p in (tmp_path / "dest").iterdir()} == before  # untouched


def test_push_refuses_foreign_shards_without_a_manifest(tmp_path):
    write_set(tmp_path / "dest", manifest=False, name="other")
    line = one_line_error(CliRunner().invoke(main, ["push", str(_synthetic(tmp_path / "a")), str(tmp_path / "dest")]))
    assert "already holds other shards (other-000000.tar" in line


def test_push_refuses_a_set_that_fails_verification(tmp_path):
    src = _synthetic(tmp_path / "src", "none")
    shard = src / "syn-000001.tar"
    data = bytearray(shard.read_bytes())
    data[600] ^= 0xFF
    shard.write_bytes(bytes(data))
    line = one_line_error(CliRunner().invoke(main, ["push", str(src), str(tmp_path / "dest")]))
    assert "fails verification" in line and "syn-000001.tar" in line and "nothing was pushed" in line
    assert not (tmp_path / "dest").exists()


def test_push_refuses_a_copy_that_fails_verification_there(tmp_path, monkeypatch):
    import lasium.shards.push as push

    def damaging_copy(fs, src, target, bar):
        data = bytearray(src.read_bytes())
        if src.name.endswith(".tar.gz"):
            data[-1] ^= 0xFF
        with fs.open(target, "wb") as out:
            out.write(bytes(data))
        return len(data)

    monkeypatch.setattr(push, "_copy", damaging_copy)
    line = one_line_error(CliRunner().invoke(main, ["push", str(_synthetic(tmp_path / "src")), str(tmp_path / "d")]))
    assert "the copy at" in line and "fails verification" in line and "push again" in line


def test_push_names_the_package_a_scheme_needs(tmp_path):
    src = _synthetic(tmp_path / "src")
    line = one_line_error(CliRunner().invoke(main, ["push", str(src), "nosuchscheme://bucket/x"]))
    assert "Protocol not known: nosuchscheme" in line
    if importlib.util.find_spec("s3fs") is None:
        line = one_line_error(CliRunner().invoke(main, ["push", str(src), "s3://bucket/sets/syn"]))
        assert "cannot write to s3:// destinations" in line and "pip install s3fs" in line


def test_push_needs_a_complete_local_set(tmp_path):
    write_set(tmp_path / "partial", manifest=False)
    line = one_line_error(CliRunner().invoke(main, ["push", str(tmp_path / "partial"), str(tmp_path / "d")]))
    assert "no manifest.json" in line and "lasium-shards index" in line


def test_hf_destinations_name_the_hub_extra_when_huggingface_hub_is_missing(tmp_path, monkeypatch):
    import fsspec.core

    def missing_backend(url, **kwargs):
        raise ImportError("Install huggingface_hub to access HfFileSystem")

    monkeypatch.setattr(fsspec.core, "url_to_fs", missing_backend)
    src = _synthetic(tmp_path / "src")
    line = one_line_error(CliRunner().invoke(main, ["push", str(src), "hf://datasets/my-org/syn"]))
    assert "cannot write to hf:// destinations" in line and "pip install 'lasium[hub]'" in line


def test_push_an_hdf5_set_to_an_fsspec_store(tmp_path):
    import fsspec

    write_set(tmp_path / "h5", "hdf5")
    report = push_set(tmp_path / "h5", "memory://bucket/h5")
    try:
        assert report.copied[-1] == "manifest.json" and report.verified is not None
        assert report.verified.ok and report.verified.tasks_checked == 7
    finally:
        fsspec.filesystem("memory").rm("/bucket/h5", recursive=True)
