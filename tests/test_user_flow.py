"""The users' two commands as typed (issue 12, section 1), in a fresh working directory, with and without Omniglot:

    lasium-gen --strategy oc --n-tasks 20
    lasium-train --shards shards/omniglot

(with few iterations here), plus the folder-of-sets mixture, mixed layouts, the default run folder and its refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FAST = [
    "--algo",
    "protonets",
    "--iterations",
    "2",
    "--log-every",
    "1",
    "--workers",
    "0",
    "--val-tasks",
    "5",
    "--val-every",
    "2",
    "--checkpoint-every",
    "0",
]


def cli(module: str, cwd: Path, *args: str, data: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    if data is not None:
        env["LASIUM_DATA"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def gen(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    r = cli("lasium.generate.job.cli", cwd, *args, "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr
    return r


def train(cwd: Path, *args: str, data: Path | None = None) -> subprocess.CompletedProcess:
    return cli("lasium.train.cli", cwd, *args, "--quiet", data=data)


def test_two_commands_without_omniglot(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    gen(work, "--strategy", "oc", "--n-tasks", "20")
    assert (work / "shards" / "omniglot" / "oc" / "manifest.json").is_file()
    r = train(work, "--shards", "shards/omniglot", *FAST, data=empty)
    assert r.returncode == 0, r.stderr
    # printed at the start: before any training output, after the notes on what was found
    lines = r.stderr.splitlines()
    assert "run folder: runs/omniglot-protonets" in lines and lines.index("run folder: runs/omniglot-protonets") < 4
    assert "shards/omniglot: 1 shard set(s), trained as one mixture: oc (20 tasks)" in r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "lasium-data download omniglot" in warnings[0] and "--data-root" in warnings[0]
    assert (work / "runs" / "omniglot-protonets" / "last").is_dir()
    # an explicit --val-dataset omniglot without the data stays an error
    r = train(
        work, "--shards", "shards/omniglot", *FAST, "--val-dataset", "omniglot", "--out", "runs/explicit", data=empty
    )
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: validation data"), r.stderr
    # the same command again: the run folder holds a run; refused with the hint, nothing overwritten
    before = (work / "runs" / "omniglot-protonets" / "metrics.jsonl").read_bytes()
    r = train(work, "--shards", "shards/omniglot", *FAST, data=empty)
    assert r.returncode == 2 and "--resume" in r.stderr and "another --out" in r.stderr
    assert (work / "runs" / "omniglot-protonets" / "metrics.jsonl").read_bytes() == before


def test_two_commands_with_omniglot_validate(tmp_path, omniglot_root):
    gen(tmp_path, "--strategy", "oc", "--n-tasks", "20")
    r = train(tmp_path, "--shards", "shards/omniglot", *FAST, data=omniglot_root)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr
    records = [
        json.loads(line)
        for line in (tmp_path / "runs" / "omniglot-protonets" / "metrics.jsonl").read_text().splitlines()
    ]
    assert any(rec.get("split") == "val" for rec in records)


def test_folder_of_sets_is_one_mixture_and_mixed_layouts_are_refused(tmp_path, monkeypatch):
    gen(tmp_path, "--strategy", "oc", "--n-tasks", "20")
    gen(tmp_path, "--strategy", "ro", "--n-tasks", "30", "--tasks-per-shard", "10")
    from lasium.train.shard_access import open_shard_set

    monkeypatch.chdir(tmp_path)
    s = open_shard_set("shards/omniglot")
    assert len(s.urls) == 4 and s.notes == [
        "shards/omniglot: 2 shard set(s), trained as one mixture: oc (20 tasks), ro (30 tasks)"
    ]
    gen(tmp_path, "--strategy", "ro", "--n-tasks", "10", "--ways", "3", "--out", "shards/omniglot/ro-3way")
    r = train(tmp_path, "--shards", "shards/omniglot", *FAST, "--val-dataset", "none")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and lines[-1].startswith("error: mixed shard configurations"), r.stderr
    assert "ro-3way holds 3-way" in lines[-1] and "shards/omniglot/oc holds 5-way" in lines[-1]


def test_run_folder_of_another_run_without_checkpoint_is_not_overwritten(tmp_path):
    gen(tmp_path, "--strategy", "oc", "--n-tasks", "20")
    run = tmp_path / "runs" / "omniglot-protonets"
    run.mkdir(parents=True)
    other = {"shards": ["shards/elsewhere"], "algo": "protonets", "seed": 7}
    (run / "train_config.json").write_text(json.dumps(other))  # a run killed before its first checkpoint
    r = train(tmp_path, "--shards", "shards/omniglot", *FAST, "--val-dataset", "none")
    assert r.returncode == 2 and "already holds a different run" in r.stderr and "--resume" in r.stderr, r.stderr
    assert json.loads((run / "train_config.json").read_text()) == other and not (run / "last").exists()


@pytest.mark.parametrize(
    "shards, name",
    [
        (["shards/omniglot"], "omniglot"),
        (["shards/omniglot/oc"], "omniglot-oc"),
        (["/x/shards/omniglot/ro/manifest.json"], "omniglot-ro"),
        (["https://host/sets/ro/manifest.json"], "ro"),
        (["data/myset"], "myset"),
    ],
)
def test_run_name(shards, name):
    from lasium.train.shard_access import run_name

    assert run_name(shards) == name


def test_external_generator_without_dataset_writes_under_its_name(tmp_path):
    tests = Path(__file__).parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lasium.generate.job.cli",
            "--strategy",
            "ro",
            "--n-tasks",
            "5",
            "--generator",
            "gen_tiny:build",
            "--device",
            "cpu",
            "--quiet",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "shards" / "gen_tiny-build" / "ro" / "manifest.json").is_file()
