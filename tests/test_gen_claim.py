"""Two lasium-gen jobs, one folder (issue 12, section 3): a job claims its --out folder for its config at the
start; a job of another config is refused in one line naming the other config while the first runs; jobs
of the same config share the folder, but never a shard (issue 25: the same command started twice); a claim
left by a killed job blocks no one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gen_tiny  # noqa: E402
import pytest

from lasium.errors import ConfigError  # noqa: E402
from lasium.generate.job.config import GenerationConfig  # noqa: E402
from lasium.generate.job.job import GenerationJob  # noqa: E402
from lasium.runtime import RankInfo  # noqa: E402
from lasium.shards import read_manifest, verify_shard_set  # noqa: E402

TESTS = Path(__file__).parent
CLAIM = ".lasium-gen.claim"


def job(out: Path, model=None, rank: RankInfo | None = None, **kw) -> GenerationJob:
    kw.setdefault("strategy", "ro")
    kw.setdefault("num_tasks", 30)
    kw.setdefault("tasks_per_shard", 10)
    cfg = GenerationConfig.build(
        out=str(out), progress=False, workers=0, device="cpu", decode_tasks=4, anchor_chunk=1024, **kw
    )
    return GenerationJob(
        cfg, model=model if model is not None else gen_tiny.tiny_gan(), rank=rank or RankInfo(), log=lambda m: None
    )


def paused_model():
    """The tiny GAN, whose first decode waits until the test lets it go (the job is then mid-shard)."""
    model = gen_tiny.tiny_gan()
    started, go = threading.Event(), threading.Event()
    decode = model.decode

    def slow_decode(z):
        started.set()
        assert go.wait(60)
        return decode(z)

    model.decode = slow_decode
    return model, started, go


def test_different_config_refused_while_the_first_job_runs(tmp_path):
    out = tmp_path / "set"
    model, started, go = paused_model()
    first = job(out, model, seed=1, rank=RankInfo(0, 2))  # rank 0 of 2: shards 0 and 2
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("result", first.run()))
    thread.start()
    try:
        assert started.wait(60)
        assert not any(p.name.endswith(".json") for p in out.iterdir())  # nothing written yet: only the claim tells
        with pytest.raises(
            ConfigError,
            match=r"being written by another lasium-gen job with a different config "
            r"\(strategy ro, alpha 0\.2, seed 1, 5-way 1\+5-shot",
        ) as exc:
            job(out, strategy="oc", seed=2).run()
        assert "\n" not in str(exc.value) and f"pid {os.getpid()}" in str(exc.value)
        # the same config may share the folder (another rank or array-job part): here rank 1 of 2, shard 1
        part = job(out, seed=1, rank=RankInfo(1, 2)).run()
        assert part.shards_written == 1
        # but not a shard: a job of the same config that would write shard 2, which the first job holds, is refused
        with pytest.raises(
            ConfigError, match=r"another lasium-gen job with the same config, which holds 1 of the 1 shard\(s\)"
        ) as exc:
            job(out, seed=1, shard_range="2:3").run()
        assert "\n" not in str(exc.value) and "(shard 2)" in str(exc.value)
    finally:
        go.set()
        thread.join(60)
    assert outcome["result"].manifest_written
    m = read_manifest(out)
    assert m.config["seed"] == 1 and m.config["strategy"] == "ro" and verify_shard_set(out).ok
    assert not (out / CLAIM).exists()  # the last job out removes the claim
    # once the first job is done, the usual rule holds: a finished set of another config needs --overwrite
    with pytest.raises(ConfigError, match="holds a shard set with a different config"):
        job(out, strategy="oc", seed=2).run()


def _gen(out: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lasium.generate.job.cli",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--quiet",
        "--workers",
        "0",
        "--generator",
        "gen_tiny:build",
        "--tasks-per-shard",
        "50",
        *args,
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_two_processes_different_configs_one_folder(tmp_path):
    """The issue's race: ro seed 1 and oc seed 2 into one --out; the second must not also report success."""
    out = tmp_path / "set"
    first = subprocess.Popen(
        _gen(out, "--strategy", "ro", "--seed", "1", "--n-tasks", "4000"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(out / "set-000000.tar.json", first)  # its first shard is done: it holds the folder, mid-run
        first.send_signal(signal.SIGSTOP)  # and stays there, however fast this machine is
        try:
            second = subprocess.run(
                _gen(out, "--strategy", "oc", "--seed", "2", "--n-tasks", "4000"),
                env=_env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            first.send_signal(signal.SIGCONT)
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert lines[0].startswith("error: ") and "strategy ro" in lines[0] and "seed 1" in lines[0]
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
    m = read_manifest(out)
    assert (m.config["strategy"], m.config["seed"], m.num_tasks) == ("ro", 1, 4000)


def test_claim_of_a_killed_job_does_not_block_a_rerun(tmp_path):
    out = tmp_path / "set"
    args = ["--strategy", "ro", "--seed", "1", "--n-tasks", "4000"]
    proc = subprocess.Popen(_gen(out, *args), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(out / CLAIM, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert (out / CLAIM).exists()  # left behind, as after kill -9 or a lost node
    again = subprocess.run(_gen(out, *args), env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert read_manifest(out).num_tasks == 4000 and not (out / CLAIM).exists()
    # a dead job's claim does not hold the folder for its config either: another config meets the usual rule
    other = subprocess.run(
        _gen(out, "--strategy", "oc", "--seed", "2", "--n-tasks", "100", "--overwrite"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert other.returncode == 0, other.stderr


def _one_line_exit_2(proc: subprocess.CompletedProcess | tuple[int, str]) -> str:
    code, err = (proc.returncode, proc.stderr) if isinstance(proc, subprocess.CompletedProcess) else proc
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    return lines[0]


def test_the_same_job_twice_is_refused_while_the_first_runs(tmp_path):
    """Issue 25: the same command started twice on one folder; the second would write the first one's shards, so
    it is refused in one line (it used to die with a FileNotFoundError traceback on a shard's temporary file)."""
    out = tmp_path / "set"
    args = ["--strategy", "ro", "--seed", "1", "--n-tasks", "4000"]
    first = subprocess.Popen(_gen(out, *args), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(out / "set-000000.tar.json", first)
        first.send_signal(signal.SIGSTOP)  # mid-run, however fast this machine is
        try:
            second = subprocess.run(_gen(out, *args), env=_env(), capture_output=True, text=True, timeout=120)
        finally:
            first.send_signal(signal.SIGCONT)
        line = _one_line_exit_2(second)
        assert "another lasium-gen job with the same config" in line and "--shard-range" in line
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
    assert verify_shard_set(out).ok and read_manifest(out).num_tasks == 4000 and not (out / CLAIM).exists()
    again = subprocess.run(_gen(out, *args), env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr  # once the first is done, the same command just finds the set complete


@pytest.mark.slow
def test_identical_jobs_started_together_never_crash(tmp_path):
    """Two identical lasium-gen processes started at the same moment, four times: each pair ends with one job done
    and the other either refused in one line or (when the first was already done) finding the set complete;
    never a traceback. Every set is whole and byte-identical to the others. (Before the shard locks, 6 of 13
    such pairs had one job die on a shard's temporary file; 3 of 9 here.)"""
    args = ["--strategy", "ro", "--seed", "3", "--n-tasks", "300", "--tasks-per-shard", "5", "--name", "race"]
    outcomes, reference = [], None
    for attempt in range(4):
        out = tmp_path / f"try{attempt}"
        procs = [
            subprocess.Popen(_gen(out, *args), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        ends = []
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=300)
            finally:
                if proc.poll() is None:
                    proc.kill()
            ends.append((proc.returncode, err))
        for code, err in ends:
            assert "Traceback" not in err, err
            if code != 0:
                assert "another lasium-gen job with the same config" in _one_line_exit_2((code, err))
        assert 0 in [code for code, _ in ends], ends
        outcomes.append(sorted(code for code, _ in ends))
        assert verify_shard_set(out).ok and not (out / CLAIM).exists()
        shards = {p.name: p.read_bytes() for p in sorted(out.glob("race-*.tar"))}
        assert len(shards) == 60
        reference = reference or shards
        assert shards == reference
    print("exit codes of the pairs:", outcomes)


def test_the_first_job_in_a_folder_removes_what_killed_writes_left(tmp_path):
    """A sidecar or manifest write cut by kill -9 leaves a temporary named with its writer's pid: the next job that
    finds no other job running removes it; one of a live process is left alone."""
    out = tmp_path / "set"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(60)
    stale = out / f".set-000001.tar.json.{gone.pid}-abcd1234.tmp"
    live = out / f".manifest.json.{os.getppid()}-abcd1234.tmp"
    stale.write_text("{")
    live.write_text("{")
    assert job(out, seed=1).run().manifest_written
    assert not stale.exists() and live.exists()
