"""``download_omniglot`` against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from fault_server import static_server

from lasium.data.cli import main
from lasium.data.download import OMNIGLOT_MD5, download_omniglot, file_md5
from lasium.data.miniature import miniature_entries, miniature_layout, write_miniature_omniglot, write_zip
from lasium.data.omniglot import scan_omniglot_zip
from lasium.errors import DataError

ZIPS = ("images_background.zip", "images_evaluation.zip")


@pytest.fixture
def serve():
    """``serve(folder) -> base URL`` of a local HTTP server for ``folder``; stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: stack.enter_context(static_server(folder))


def closed_port_url() -> str:
    """A URL nothing listens on: any download attempt fails with 'connection refused'."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def everything_under(folder: Path) -> list[str]:
    """Every file and folder below ``folder`` (empty when it does not exist)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, object]:
    """A folder served as the mirror, holding a miniature zip pair (rebuilt: md5 differs from the official)."""
    layout = write_miniature_omniglot(tmp_path / "mirror-root")
    return tmp_path / "mirror-root" / "omniglot", layout


def test_md5_mismatch_fails_cleanly(serve, mirror, tmp_path: Path) -> None:
    folder, layout = mirror
    url = serve(folder)
    target = tmp_path / "data"
    with pytest.raises(
        DataError,
        match=rf"{url}/images_background.zip has md5 [0-9a-f]{{32}}, expected {OMNIGLOT_MD5['images_background.zip']}",
    ):
        download_omniglot(target, base_url=url, layout=layout, progress=False)
    assert not target.exists()  # not even the folders it created


def test_download_with_matching_md5_then_kept(serve, mirror, tmp_path: Path) -> None:
    folder, layout = mirror
    md5 = {name: file_md5(folder / name) for name in ZIPS}
    target = tmp_path / "data"
    results = download_omniglot(target, base_url=serve(folder), expected_md5=md5, layout=layout, progress=False)
    assert [r.action for r in results] == ["downloaded", "downloaded"]
    assert everything_under(target / "omniglot") == list(ZIPS)
    for which, name in enumerate(ZIPS):
        assert (target / "omniglot" / name).read_bytes() == (folder / name).read_bytes()
        assert results[which].md5 == md5[name]
        scan_omniglot_zip(target / "omniglot" / name, which, layout)
    # Present and valid: kept by content, without a single request (the URL is dead).
    again = download_omniglot(target, base_url=closed_port_url(), layout=layout, progress=False)
    assert [r.action for r in again] == ["kept", "kept"]


def test_invalid_local_copy_is_replaced(serve, mirror, tmp_path: Path) -> None:
    folder, layout = mirror
    target = tmp_path / "data" / "omniglot"
    target.mkdir(parents=True)
    shutil.copy(folder / ZIPS[0], target / ZIPS[0])
    (target / ZIPS[1]).write_bytes((folder / ZIPS[1]).read_bytes()[:1000])  # truncated
    md5 = {name: file_md5(folder / name) for name in ZIPS}
    results = download_omniglot(
        tmp_path / "data", base_url=serve(folder), expected_md5=md5, layout=layout, progress=False
    )
    assert [r.action for r in results] == ["kept", "replaced"] and "not a readable zip" in results[1].reason
    assert file_md5(target / ZIPS[1]) == md5[ZIPS[1]]


def test_http_and_network_errors_leave_nothing(serve, mirror, tmp_path: Path) -> None:
    folder, layout = mirror
    target = tmp_path / "data"
    with pytest.raises(DataError, match=r"images_background.zip failed: HTTP 404"):
        download_omniglot(target, base_url=serve(folder) + "/nowhere", layout=layout, progress=False)
    with pytest.raises(DataError, match=r"downloading http://127.0.0.1:\d+/images_background.zip failed \("):
        download_omniglot(target, base_url=closed_port_url(), layout=layout, progress=False, timeout=5)
    assert everything_under(target / "omniglot") == []


def test_right_md5_but_wrong_layout_is_refused(serve, tmp_path: Path) -> None:
    layout = miniature_layout()
    entries = miniature_entries(layout)
    entries[0]["images_background/stray.txt"] = b"not part of Omniglot"
    served = tmp_path / "served"
    for name, e in zip(ZIPS, entries):
        write_zip(served / name, e)
    md5 = {name: file_md5(served / name) for name in ZIPS}
    target = tmp_path / "data"
    with pytest.raises(
        DataError,
        match=r"matched its md5 but is not a valid Omniglot zip: unexpected entry 'images_background/stray.txt'",
    ):
        download_omniglot(target, base_url=serve(served), expected_md5=md5, layout=layout, progress=False)
    assert everything_under(target / "omniglot") == []


def test_cli_download_mismatch_exits_2_with_one_line(serve, mirror, tmp_path: Path) -> None:
    folder, _ = mirror
    result = CliRunner().invoke(
        main, ["download", "omniglot", "--data-root", str(tmp_path / "d"), "--base-url", serve(folder)]
    )
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "md5" in errors[0] and result.stderr.rstrip().endswith(errors[0])
    assert "Traceback" not in result.output
    assert everything_under(tmp_path / "d" / "omniglot") == []


# --- with the real zips ------------------------------------------------------------------------------


@pytest.mark.omniglot
def test_real_zips_official_md5_mismatch_then_override(serve, omniglot_root: Path, tmp_path: Path) -> None:
    """Our copies are rebuilt zips: the official md5 refuses them; an md5 override equal to theirs accepts them."""
    source = omniglot_root / "omniglot"
    url = serve(source)
    target = tmp_path / "data"
    with pytest.raises(DataError, match="has md5"):
        download_omniglot(target, base_url=url, progress=False)
    assert everything_under(target / "omniglot") == []
    md5 = {name: hashlib.md5((source / name).read_bytes()).hexdigest() for name in ZIPS}
    results = download_omniglot(target, base_url=url, expected_md5=md5, progress=False)
    assert [r.action for r in results] == ["downloaded", "downloaded"]
    assert all(file_md5(target / "omniglot" / n) == md5[n] for n in ZIPS)


@pytest.mark.omniglot
def test_real_local_copy_is_kept_by_content(omniglot_root: Path) -> None:
    before = {n: (omniglot_root / "omniglot" / n).stat().st_mtime_ns for n in ZIPS}
    results = download_omniglot(omniglot_root, base_url=closed_port_url(), progress=False)
    assert [r.action for r in results] == ["kept", "kept"]
    assert before == {n: (omniglot_root / "omniglot" / n).stat().st_mtime_ns for n in ZIPS}
