"""lasium-gen from the command line: one-line errors, kill-and-resume, writer-process failures, torchrun."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import invoke_gen as invoke
from cli_helpers import one_line_error, tiny_gen_args
from click.testing import CliRunner

from lasium.generate.job.cli import main
from lasium.generate.sources.base import option_flag
from lasium.generate.sources.registry import TASK_SOURCES
from lasium.shards import read_manifest, verify_shard_set

TESTS = Path(__file__).parent


def env_with(*paths: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in paths] + [env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def gen_cmd(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lasium.generate.job.cli", "--out", str(out), "--device", "cpu", "--quiet", *args]


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--strategy", "xyz"], "unknown strategy"),
        (["--strategy", "n", "--ways", "1"], "--ways must be at least 2"),
        (["--strategy", "n", "--shots", "0"], "at least 1"),
        (["--strategy", "n", "--queries", "-1"], "at least 1"),
        (["--strategy", "oc", "--epsilon", "1e5"], "anchor sampling stalls"),
        (["--strategy", "n", "--generator", "no_such_module_xyz:build"], "cannot import"),
        (["--strategy", "n", "--generator", "/does/not/exist"], "not found"),
        (["--strategy", "n", "--shard-range", "9:12"], "selects no shard"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, expect):
    out = tmp_path / "o"
    result = invoke(
        *tiny_gen_args(out),
        *args,
    )
    assert expect in one_line_error(result)
    assert not out.exists() or not any(p.suffix in (".tar", ".h5") for p in out.iterdir())


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke(
        "--strategy", "n", "--n-tasks", "5", "--generator", "gen_tiny:build", "--out", str(blocker / "sub"), "--quiet"
    )
    assert "cannot write to output folder" in one_line_error(result)
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = invoke(
            "--strategy", "n", "--n-tasks", "5", "--generator", "gen_tiny:build", "--out", str(locked / "x"), "--quiet"
        )
        one_line_error(result)


def test_counts_and_summary_and_preview_hint(tmp_path):
    out = tmp_path / "c"
    result = invoke(
        "--strategy",
        "n",
        "--n-tasks",
        "2.5e1",
        "--tasks-per-shard",
        "1_0",
        "--generator",
        "gen_tiny:build",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert read_manifest(out).num_tasks == 25 and len(read_manifest(out).shards) == 3
    assert "wrote 25 tasks in 3 shards" in result.stderr and "tasks/s" in result.stderr
    assert f"lasium-shards preview {out}" in result.stderr


def test_help_teaches_presets_and_examples():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for text in ("--strategy", "protonets", "246.09375", "--shard-range", "torchrun", "2.0", "0.8", "--source real"):
        assert text in result.output
    assert "not a learner" in result.output  # --tuned-for picks sigma/alpha values, never the learner
    for name, kind in TASK_SOURCES.items():  # every registered source and each of its options
        assert name in result.output and kind.summary in " ".join(result.output.split())
        for field in kind.cli_fields():
            assert option_flag(field) in result.output


def test_shards_is_not_a_lasium_gen_option(tmp_path):
    # --shards names shard *sources* in lasium-train; lasium-gen's range of shards to make is --shard-range only.
    out = tmp_path / "old"
    assert "No such option '--shards'" in one_line_error(
        invoke("--strategy", "n", *tiny_gen_args(out), "--shards", "0:1")
    )
    assert not out.exists()


def test_killed_job_resumes_to_identical_bytes(tmp_path):
    env = env_with(TESTS)
    args = (
        "--strategy",
        "oc",
        "--n-tasks",
        "150",
        "--tasks-per-shard",
        "10",
        "--generator",
        "gen_tiny:build_slow",
        "--save-latents",
    )
    ref = tmp_path / "ref"
    r = invoke(*gen_cmd(ref, *args, "--workers", "0", "--name", "set")[3:])  # uninterrupted, in this process
    assert r.exit_code == 0, r.output
    out = tmp_path / "killed"
    hold = tmp_path / "hold"  # gen_tiny.SlowDecoder holds the job after 8 of its 16 calls until it is killed
    hold.touch()
    proc = subprocess.Popen(
        gen_cmd(out, *args, "--workers", "1", "--name", "set"),
        env=env | {"LASIUM_TEST_HOLD": str(hold), "LASIUM_TEST_HOLD_AFTER": "8"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.tar.json"))) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = len(list(out.glob("*.tar.json")))
    assert done_before < 15 and not (out / "manifest.json").exists()
    resumed = subprocess.run(
        gen_cmd(out, *args, "--workers", "0", "--name", "set"), env=env, check=True, capture_output=True, text=True
    )
    assert "resuming" in resumed.stderr
    want = {p.name: p.read_bytes() for p in ref.iterdir()}
    got = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert got.keys() == want.keys() and got == want
    assert verify_shard_set(out).ok


def test_enospc_in_a_writer_process_propagates(tmp_path):
    # A sitecustomize that fills the disk in every process of this run (writer processes included).
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import errno, os\n"
        "if os.environ.get('LASIUM_TEST_ENOSPC'):\n"
        "    import lasium.shards.atomic as a\n"
        "    _w = a.HashingWriter.write\n"
        "    def write(self, data):\n"
        "        if self.bytes + len(memoryview(data)) > 60000:\n"
        "            raise OSError(errno.ENOSPC, 'No space left on device', 'fake')\n"
        "        return _w(self, data)\n"
        "    a.HashingWriter.write = write\n"
    )
    env = env_with(hook, TESTS)
    env["LASIUM_TEST_ENOSPC"] = "1"
    out = tmp_path / "o"
    r = subprocess.run(
        gen_cmd(
            out,
            "--strategy",
            "n",
            "--n-tasks",
            "100",
            "--tasks-per-shard",
            "25",
            "--generator",
            "gen_tiny:build",
            "--workers",
            "2",
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no space left on device" in lines[0], r.stderr
    assert not out.exists()  # nothing partial, nothing hidden left behind: not even the folder the job made


def test_torchrun_two_processes_split_shards(tmp_path):
    pytest.importorskip("torch.distributed.run")
    env = env_with(TESTS)
    args = (
        "--strategy",
        "ro",
        "--n-tasks",
        "50",
        "--tasks-per-shard",
        "10",
        "--generator",
        "gen_tiny:build",
        "--workers",
        "0",
        "--name",
        "s",
    )
    ref = tmp_path / "ref"
    subprocess.run(gen_cmd(ref, *args), env=env, check=True, capture_output=True)
    out = tmp_path / "tr"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "lasium.generate.job.cli",
        *gen_cmd(out, *args)[3:],
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "rank 1:" in r.stderr
    m = read_manifest(out)
    assert {e.file: e.sha256 for e in m.shards} == {e.file: e.sha256 for e in read_manifest(ref).shards}


def test_console_script_is_declared():
    text = (TESTS.parent / "pyproject.toml").read_text()
    assert 'lasium-gen = "lasium.generate.job.cli:main"' in text
    if shutil.which("lasium-gen") is None:
        pytest.skip("lasium-gen not on PATH (package installed before the script was declared)")
