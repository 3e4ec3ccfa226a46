"""Remote reads ride out transient faults (lasium.shards.remote): each fault injected by a local server on
127.0.0.1 (tests/fault_server.py). A reset, a truncated body or a 5xx is retried and the read resumed by byte
range (or from 0 on a server that ignores ranges), giving the very tasks of a read without fault; a fault
that lasts past the policy's tries is one error line naming the URL and the fault; a 404 or a sha256 that
differs from the manifest is never retried (the server counts the requests).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from fault_server import Fault, serve
from shards_helpers import expected_tasks, write_set

from lasium.errors import ConfigError, ShardError
from lasium.shards import RetryPolicy, iter_tasks, open_remote, verify_shard_set
from lasium.shards.cli import main as shards_main

SHARD = "set/tiny-000001.tar"


@pytest.fixture(autouse=True)
def no_wait(monkeypatch):
    """No backoff sleeps (the policy still counts the tries); 4 tries unless a test says otherwise."""
    monkeypatch.setenv("LASIUM_REMOTE_BACKOFF", "0")
    monkeypatch.setenv("LASIUM_REMOTE_TRIES", "4")


@pytest.fixture
def www(tmp_path):
    root = tmp_path / "www"
    write_set(root / "set", "wds", num_tasks=7, tasks_per_shard=3)  # 3 shards, plain .tar
    return root


@pytest.fixture
def syn(tmp_path):
    """A set the trainer takes (16x16 images), served from ``www/syn``: (root, shard paths relative to it)."""
    from lasium.train.synthetic import write_synthetic_shards

    root = tmp_path / "www"
    write_synthetic_shards(root / "syn", shards=3, tasks_per_shard=2, image_shape=(16, 16, 1), name="syn")
    return root, sorted(str(p.relative_to(root)) for p in (root / "syn").glob("syn-*.tar*") if p.suffix != ".json")


def train_args(url: str, out, iterations: int = 3) -> list[str]:
    args = ["--shards", url, "--algo", "protonets", "--iterations", str(iterations), "--meta-batch", "2"]
    return args + ["--workers", "0", "--val-dataset", "none", "--device", "cpu", "--quiet", "--out", str(out)]


def assert_all_tasks(url: str) -> None:
    want = expected_tasks(7)
    got = list(iter_tasks(url))
    assert [t.meta["index"] for t in got] == list(range(7))
    for i, t in enumerate(got):
        assert np.array_equal(t.support, want.support[i]) and np.array_equal(t.query, want.query[i])


def one_line_error(result, *texts: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    for text in texts:
        assert text in lines[0], lines[0]
    return lines[0]


def ranges_asked(server, path: str) -> list[str | None]:
    return [r for p, r in server.log if p == path]


@pytest.mark.parametrize("kind", ["truncate", "reset"])
def test_a_cut_transfer_is_resumed_by_byte_range(www, kind):
    half = (www / SHARD).stat().st_size // 2
    with serve(www) as server:
        server.inject(SHARD, Fault(kind, after=half))
        assert_all_tasks(f"{server.url}/set/manifest.json")
        asked = ranges_asked(server, SHARD)
    assert len(asked) == 2 and asked[0] is None
    if kind == "truncate":  # a clean close: every byte sent arrived, the read resumes right after them
        assert asked[1] == f"bytes={half}-"
    else:  # a reset may drop bytes in flight: the read resumes after those that arrived
        assert asked[1] is None or 0 < int(asked[1].removeprefix("bytes=").rstrip("-")) <= half


def test_a_server_that_ignores_ranges_is_read_again_from_the_start(www):
    half = (www / SHARD).stat().st_size // 2
    with serve(www, ranges=False) as server:
        server.inject(SHARD, Fault("truncate", after=half), Fault("reset", after=half // 2))
        assert_all_tasks(f"{server.url}/set/manifest.json")
        assert ranges_asked(server, SHARD) == [None, f"bytes={half}-", f"bytes={half}-"]


def test_5xx_on_the_manifest_and_a_shard_are_retried(www):
    with serve(www) as server:
        server.inject("set/manifest.json", Fault("status", status=500, times=2))
        server.inject(SHARD, Fault("status", status=503, times=3))
        result = CliRunner().invoke(shards_main, ["verify", f"{server.url}/set/manifest.json", "--no-progress"])
        assert result.exit_code == 0 and result.output.startswith("ok: 3 shards, 7 tasks"), result.output
        assert server.requests["set/manifest.json"] == 3 and server.requests[SHARD] == 4


def test_a_fault_that_lasts_is_one_error_line_after_the_last_try(www, monkeypatch):
    monkeypatch.setenv("LASIUM_REMOTE_TRIES", "3")
    with serve(www) as server:
        server.inject("set/manifest.json", Fault("status", status=503, times=None))
        url = f"{server.url}/set/manifest.json"
        line = one_line_error(CliRunner().invoke(shards_main, ["inspect", url]), url, "HTTP 503", "after 3 tries")
        assert server.requests["set/manifest.json"] == 3, line

        server.inject(SHARD, Fault("truncate", after=10, times=None))  # 10 bytes more per try: not enough
        cut = r"tiny-000001\.tar: the connection closed after \d+ of \d+ bytes.*3 tries"
        with pytest.raises(ShardError, match=cut):
            list(iter_tasks(f"{server.url}/set/tiny-{{000000..000002}}.tar"))


def test_a_lasting_fault_stops_lasium_train_with_one_line(syn, tmp_path):
    from lasium.train.cli import main as train_main

    root, shards = syn
    with serve(root) as server:
        server.inject(shards[1], Fault("reset", after=100, times=None))
        args = train_args(f"{server.url}/syn/manifest.json", tmp_path / "run", iterations=4)
        result = CliRunner().invoke(train_main, [*args, "--shuffle-buffer", "1"])  # reads every shard
        assert server.requests[shards[1]] == 4
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.output.rstrip().endswith(errors[0]), result.output  # after the run's notes
    assert shards[1] in errors[0] and "gave up after 4 tries" in errors[0], errors[0]
    assert "transfer failed" in errors[0] or "connection closed" in errors[0]


def test_404_is_never_retried(www):
    (www / SHARD).unlink()
    with serve(www) as server:
        with pytest.raises(ShardError, match=r"tiny-000001\.tar not found \(HTTP 404\)"):
            list(iter_tasks(f"{server.url}/set/manifest.json"))
        assert server.requests[SHARD] == 1
        server.inject("set/manifest.json", Fault("status", status=403))
        result = CliRunner().invoke(shards_main, ["inspect", f"{server.url}/set/manifest.json"])
        one_line_error(result, "HTTP 403")
        assert server.requests["set/manifest.json"] == 2  # the GET of iter_tasks, then one 403


def test_a_sha256_mismatch_is_never_retried(www):
    manifest = json.loads((www / "set" / "manifest.json").read_text())
    manifest["shards"][1]["sha256"] = "0" * 64
    (www / "set" / "manifest.json").write_text(json.dumps(manifest))
    with serve(www) as server:
        report = verify_shard_set(f"{server.url}/set/manifest.json")
        assert [p.file for p in report.problems] == ["tiny-000001.tar"] and "sha256" in report.problems[0].message
        assert server.requests[SHARD] == 1


def test_training_through_faults_matches_training_without(syn, tmp_path):
    """Every shard of the set faulty on its first requests: the run's losses equal those of a clean run."""
    from lasium.train.cli import main as train_main

    root, shards = syn

    def losses(server, name: str) -> list[float]:
        out = tmp_path / name
        result = CliRunner().invoke(train_main, train_args(f"{server.url}/syn/manifest.json", out))
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return [row["loss"] for row in rows if "loss" in row]

    with serve(root) as server:
        clean = losses(server, "clean")
        server.inject("syn/manifest.json", Fault("status", status=502))
        for i, shard in enumerate(shards):
            kind = ("reset", "truncate", "status")[i % 3]
            server.inject(shard, Fault(kind, after=(root / shard).stat().st_size // 3, status=500))
        faulty = losses(server, "faulty")
        assert all(server.requests[shard] >= 3 for shard in shards)  # read in both runs, once more after the fault
    assert clean and faulty == clean


def test_retry_policy_from_the_environment():
    assert RetryPolicy.from_env({}) == RetryPolicy()
    policy = RetryPolicy.from_env(
        {"LASIUM_REMOTE_TRIES": "7", "LASIUM_REMOTE_BACKOFF": "0.25", "LASIUM_REMOTE_MAX_BACKOFF": "1"}
    )
    assert policy == RetryPolicy(tries=7, backoff=0.25, max_backoff=1.0)
    assert [policy.delay(k) for k in range(1, 6)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    for name, bad in (("LASIUM_REMOTE_TRIES", "0"), ("LASIUM_REMOTE_TRIES", "2.5"), ("LASIUM_REMOTE_BACKOFF", "-1")):
        with pytest.raises(ConfigError, match=f"{name}="):
            RetryPolicy.from_env({name: bad})


def test_backoff_waits_between_tries(www, monkeypatch):
    import lasium.shards.remote as remote

    waits: list[float] = []
    monkeypatch.setattr(remote.time, "sleep", waits.append)
    with serve(www) as server:
        server.inject(SHARD, Fault("status", status=503, times=3))
        stream = open_remote(f"{server.url}/{SHARD}", RetryPolicy(tries=4, backoff=0.5, max_backoff=1.5))
        assert stream.read() == (www / SHARD).read_bytes() and stream.tries == 4
        stream.close()
    assert waits == [0.5, 1.0, 1.5]


def test_a_bad_policy_variable_is_one_line(www, monkeypatch):
    monkeypatch.setenv("LASIUM_REMOTE_TRIES", "many")
    with serve(www) as server:
        one_line_error(
            CliRunner().invoke(shards_main, ["inspect", f"{server.url}/set/manifest.json"]), "LASIUM_REMOTE_TRIES"
        )


def test_verbose_logs_each_retry(www):
    with serve(www) as server:
        server.inject("set/manifest.json", Fault("status", status=503, times=2))
        url = f"{server.url}/set/manifest.json"
        quiet = CliRunner().invoke(shards_main, ["inspect", url])
        assert quiet.exit_code == 0 and "debug:" not in quiet.output, quiet.output
        server.inject("set/manifest.json", Fault("status", status=503, times=2))
        loud = CliRunner().invoke(shards_main, ["-v", "inspect", url])
    retries = [line for line in loud.output.splitlines() if line.startswith("debug: ")]
    assert loud.exit_code == 0 and len(retries) == 2, loud.output
    assert "HTTP 503" in retries[0] and "try 2 of 4" in retries[0] and "try 3 of 4" in retries[1]


def test_a_file_that_changes_between_tries_is_not_retried(www):
    path = www / SHARD
    half = path.stat().st_size // 2
    with serve(www) as server:
        server.inject(SHARD, Fault("truncate", after=half))
        stream = open_remote(f"{server.url}/{SHARD}")
        got = b""
        while len(got) < half:
            got += stream.read(half - len(got))
        path.write_bytes(path.read_bytes() + b"\0" * 512)  # replaced on the server by a longer file
        with pytest.raises(ShardError, match="changed on the server while it was read"):
            stream.read(1024)
        stream.close()
        assert server.requests[SHARD] == 2
