"""``lasium-gen`` stopped by SIGTERM or Ctrl-C (issue 25): it cleans up and the rerun resumes, byte for byte.

A real ``lasium-gen`` process with writer processes (shared-memory slots) is signalled mid-run. It must stop its
writers, free its shared memory (no "leaked shared_memory" warning), drop its claim on the folder (no
``.lasium-gen.claim`` left), leave no temporary file and nothing that looks complete (no manifest, no card; every
shard file there has its sidecar and matches it), exit 143 (SIGTERM) or 130 (SIGINT) with one line, and leave no
process behind. The same command then resumes and the set is byte-identical to one made without interruption.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cli_helpers import invoke_gen

from lasium.safe_io import file_sha256
from lasium.shards.manifest import read_sidecar

TESTS = Path(__file__).parent
ARGS = ["--strategy", "ro", "--seed", "5", "--n-tasks", "120", "--tasks-per-shard", "6", "--name", "sig"]
# One generator call per 2 tasks, each at least 0.1 s; the signalled job is held after 12 calls (24 tasks, 4 of its 20
# shards) until the test has signalled it, so it is stopped mid-run however loaded the machine is (a poll for the
# first shard once saw a job that had already finished, on a 2-core machine running two other jobs). The job stops
# between task batches, so the hold is released right after the signal.
ARGS += ["--generator", "gen_tiny:build_slow", "--decode-tasks", "2", "--device", "cpu", "--quiet"]


def _env(mark: str, hold: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["LASIUM_TEST_MARK"] = mark  # inherited by the job's fork server, writers and resource tracker
    if hold is not None:  # gen_tiny.SlowDecoder waits while this file exists, after 12 calls
        env["LASIUM_TEST_HOLD"], env["LASIUM_TEST_HOLD_AFTER"] = str(hold), "12"
    return env


def _processes_marked(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"LASIUM_TEST_MARK={mark}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _psm_segments() -> set[str]:
    shm = Path("/dev/shm")
    return {p.name for p in shm.iterdir() if p.name.startswith("psm_")} if shm.is_dir() else set()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """The set made without interruption (in this process, no writer processes: the bytes do not depend on it)."""
    out = tmp_path_factory.mktemp("reference") / "set"
    result = invoke_gen(*ARGS, "--workers", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    return {p.name: p.read_bytes() for p in sorted(out.glob("sig-*.tar"))}


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum,group,code,line",
    [(signal.SIGTERM, False, 143, "terminated"), (signal.SIGINT, True, 130, "interrupted")],
    ids=["SIGTERM to the job", "Ctrl-C (SIGINT to its process group)"],
)
def test_signal_cleans_up_and_the_rerun_resumes_byte_identical(tmp_path, reference, signum, group, code, line):
    out = tmp_path / "set"
    mark = uuid.uuid4().hex
    segments_before = _psm_segments()
    hold = tmp_path / "hold"
    hold.touch()
    command = [sys.executable, "-m", "lasium.generate.job.cli", *ARGS, "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(
        command,
        env=_env(mark, hold),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Ctrl-C as in a terminal: a pytest started in the background (`pytest &`) has SIGINT ignored, its children
        # inherit that, and the job then rightly runs to its end (seen: exit 0, all 20 shards)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("sig-*.tar.json")):  # a shard is done: writers and shared memory are in use
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no shard was written"
            time.sleep(0.05)
        os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
        hold.unlink()  # the job stops at its next task batch: let a held generator call return to it
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [line], err  # no traceback, no leaked-resource warning
    deadline = time.monotonic() + 10  # the resource tracker outlives the job by a moment
    while _processes_marked(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_marked(mark) == [], "a writer, fork server or tracker outlived the job"
    assert not (_psm_segments() - segments_before), "shared memory left in /dev/shm"
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".")], names  # no claim, no temporary file
    assert not {"manifest.json", "README.md", "preview.png"} & set(names), names  # nothing says "complete"
    shards = [n for n in names if n.endswith(".tar")]
    assert 0 < len(shards) < len(reference), names  # stopped mid-run
    for name in shards:  # what is there is whole: every shard with its sidecar, matching it
        _, entry = read_sidecar(out / f"{name}.json")
        assert (entry.bytes, entry.sha256) == ((out / name).stat().st_size, file_sha256(out / name))
    rerun = subprocess.run(command, env=_env(mark), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming: {len(shards)} shard(s) already complete" in rerun.stderr
    assert {p.name: p.read_bytes() for p in sorted(out.glob("sig-*.tar"))} == reference
