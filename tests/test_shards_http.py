"""Shard sets over HTTP: a real server on 127.0.0.1 (tests/fault_server.py, in a thread) serving a temporary folder.

inspect / verify / preview / lasium-train take the URL of a set's manifest.json and stream the shards
next to it; a connection cut in the middle of a shard, a 404 and a manifest whose sha256 does not
match what is served are clear one-line errors (or a skip with --skip-corrupt). Nothing leaves the
machine: the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from fault_server import Fault, serve
from PIL import Image
from shards_helpers import expected_tasks, write_set  # noqa: E402

from lasium.errors import ShardError  # noqa: E402
from lasium.shards import iter_tasks, verify_shard_set  # noqa: E402
from lasium.shards.cli import main as shards_main  # noqa: E402
from lasium.train.synthetic import write_synthetic_shards  # noqa: E402


@pytest.fixture
def server(tmp_path):
    """(root folder served, base URL, the :class:`fault_server.FaultServer`)."""
    root = tmp_path / "www"
    root.mkdir()
    with serve(root) as httpd:
        yield root, httpd.url, httpd


def run(*args):
    return CliRunner().invoke(shards_main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *texts: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    for text in texts:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_inspect_verify_preview_iter_over_http(server, tmp_path, compression):
    root, base, _ = server
    write_set(root / "set", "wds", compression=compression)
    url = f"{base}/set/manifest.json"
    suffix = ".tar.gz" if compression == "gzip" else ".tar"

    result = run("inspect", url)
    assert result.exit_code == 0, result.output
    assert "7 of 7 in 3 shards" in result.output and suffix in result.output

    result = run("verify", url, "--no-progress")
    assert result.exit_code == 0 and result.output.startswith("ok: 3 shards, 7 tasks"), result.output

    result = run("preview", url, "--tasks", "2", "--out", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "p.png").size[0] > 0

    want = expected_tasks(7)
    got = list(iter_tasks(url))
    assert [t.meta["index"] for t in got] == list(range(7))
    assert all(
        np.array_equal(t.support, want.support[i]) and np.array_equal(t.query, want.query[i]) for i, t in enumerate(got)
    )
    # a folder URL ending in / means its manifest.json; a brace pattern of shard URLs works too
    assert len(list(iter_tasks(f"{base}/set/"))) == 7
    assert len(list(iter_tasks(f"{base}/set/tiny-{{000000..000002}}{suffix}"))) == 7


def test_hdf5_set_verifies_over_http(server):
    root, base, _ = server
    write_set(root / "h", "hdf5")
    report = verify_shard_set(f"{base}/h/manifest.json")
    assert report.ok and report.tasks_checked == 7, report.problems
    want = expected_tasks(7)
    got = list(iter_tasks(f"{base}/h/manifest.json"))  # each shard fetched into memory (HDF5 needs random access)
    assert [t.meta["index"] for t in got] == list(range(7)) and np.array_equal(got[5].query, want.query[5])


def test_lasium_train_reads_a_manifest_url(server, tmp_path):
    from lasium.train.cli import main as train_main

    root, base, _ = server
    write_synthetic_shards(
        root / "syn", shards=2, tasks_per_shard=4, image_shape=(16, 16, 1), name="syn", compression="gzip"
    )
    result = CliRunner().invoke(
        train_main,
        [
            "--shards",
            f"{base}/syn/manifest.json",
            "--algo",
            "protonets",
            "--iterations",
            "1",
            "--meta-batch",
            "2",
            "--workers",
            "0",
            "--val-dataset",
            "none",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "last" / "config.json").is_file()


def test_connection_cut_mid_shard_is_a_clear_error_or_skipped(server, tmp_path, monkeypatch):
    from lasium.train.cli import main as train_main

    root, base, httpd = server
    write_synthetic_shards(
        root / "syn", shards=3, tasks_per_shard=2, image_shape=(16, 16, 1), name="syn", compression="gzip"
    )
    # every try of the shard is cut a quarter of the way in: 2 tries (resumed by range) reach half of it
    monkeypatch.setenv("LASIUM_REMOTE_TRIES", "2")
    size = (root / "syn" / "syn-000001.tar.gz").stat().st_size
    httpd.inject("syn/syn-000001.tar.gz", Fault("truncate", after=size // 4, times=None))
    url = f"{base}/syn/manifest.json"

    with pytest.raises(ShardError, match=r"syn-000001\.tar\.gz: the connection closed after \d+ of \d+ bytes"):
        list(iter_tasks(url))

    result = run("verify", url, "--no-progress")
    assert result.exit_code == 1
    assert "bad: syn-000001.tar.gz: the connection closed after" in result.output, result.output
    assert "syn-000000" not in result.output and "syn-000002" not in result.output

    # 2 steps of 2 tasks with a 1-task shuffle buffer read 5 tasks: more than the 4 of the intact shards, so
    # the first round over the shards (random order) reaches the cut one, whatever the order
    args = [
        "--shards",
        url,
        "--algo",
        "protonets",
        "--iterations",
        "2",
        "--meta-batch",
        "2",
        "--workers",
        "0",
        "--val-dataset",
        "none",
        "--device",
        "cpu",
        "--quiet",
        "--shuffle-buffer",
        "1",
    ]
    failed = CliRunner().invoke(train_main, args + ["--out", str(tmp_path / "fail")])
    assert failed.exit_code == 2, failed.output
    assert "error: " in failed.output and "syn-000001.tar.gz" in failed.output and "Traceback" not in failed.output
    skipped = CliRunner().invoke(train_main, args + ["--out", str(tmp_path / "skip"), "--skip-corrupt"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipping shard" in skipped.output and "syn-000001.tar.gz" in skipped.output


def test_missing_shard_and_missing_manifest_are_404_errors(server):
    root, base, _ = server
    write_set(root / "set", "wds", compression="gzip")
    (root / "set" / "tiny-000002.tar.gz").unlink()
    result = run("verify", f"{base}/set/manifest.json", "--no-progress")
    assert result.exit_code == 1
    assert "bad: tiny-000002.tar.gz: " in result.output and "not found (HTTP 404)" in result.output, result.output
    with pytest.raises(ShardError, match=r"tiny-000002\.tar\.gz not found \(HTTP 404\)"):
        list(iter_tasks(f"{base}/set/manifest.json"))
    assert_one_line_error(run("inspect", f"{base}/nothing/manifest.json"), "nothing/manifest.json not found (HTTP 404)")
    assert_one_line_error(run("preview", f"{base}/nothing/manifest.json"), "not found (HTTP 404)")


def test_manifest_sha256_that_does_not_match_the_served_shard(server):
    root, base, _ = server
    write_set(root / "set", "wds", compression="gzip")
    manifest = json.loads((root / "set" / "manifest.json").read_text())
    manifest["shards"][1]["sha256"] = "0" * 64
    (root / "set" / "manifest.json").write_text(json.dumps(manifest))
    result = run("verify", f"{base}/set/manifest.json", "--no-progress")
    assert result.exit_code == 1
    assert (
        "bad: tiny-000001.tar.gz: sha256" in result.output
        and "differs from the manifest's 000000000000" in result.output
    )
    assert "tiny-000000" not in result.output and "tiny-000002" not in result.output


def test_served_shard_replaced_by_another_is_caught(server):
    root, base, _ = server
    write_set(root / "set", "wds", compression="gzip")
    write_set(root / "other", "wds", compression="gzip", seed=5)
    shutil.copy(root / "other" / "tiny-000000.tar.gz", root / "set" / "tiny-000000.tar.gz")
    report = verify_shard_set(f"{base}/set/manifest.json")
    assert [p.file for p in report.problems] == ["tiny-000000.tar.gz"]
    assert "sha256" in report.problems[0].message


def test_unreachable_host_and_url_that_is_not_a_manifest(tmp_path):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert_one_line_error(run("verify", f"http://127.0.0.1:{port}/set/manifest.json"), "cannot reach http://127.0.0.1")
    assert_one_line_error(run("inspect", f"http://127.0.0.1:{port}/set/x-000000.tar"), "not the URL of a manifest")


def test_fsspec_schemes_memory_and_a_missing_backend(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    local = tmp_path / "set"
    write_set(local, "wds", compression="gzip")
    fs = fsspec.filesystem("memory")
    for p in local.iterdir():
        fs.pipe(f"/lasium-test-set/{p.name}", p.read_bytes())
    try:
        report = verify_shard_set("memory://lasium-test-set/manifest.json")
        assert report.ok and report.tasks_checked == 7, report.problems
        assert len(list(iter_tasks("memory://lasium-test-set/manifest.json"))) == 7
        fs.rm("/lasium-test-set/tiny-000001.tar.gz")
        with pytest.raises(ShardError, match=r"tiny-000001\.tar\.gz not found"):
            list(iter_tasks("memory://lasium-test-set/manifest.json"))
    finally:
        fs.rm("/lasium-test-set", recursive=True)
    try:
        import s3fs  # noqa: F401
    except ImportError:
        assert_one_line_error(run("inspect", "s3://bucket/set/manifest.json"), "s3fs")
