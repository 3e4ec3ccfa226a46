"""``benchmarks/gpu_check.sh --quick``: the one-call GPU script, run on the CPU at tiny sizes, goes through every
stage (fits, export, the three benchmarks, ``lasium-repro epoch-curve``; the reproduction's budget guard) and leaves
what the device tool can bring back. About 8 minutes on a free 2-core CPU, 20 on a busy one."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest

from lasium.generate import STRATEGY_PARAMETERS

# What the device tool returns: at most 8 files under $OUT.
MAX_FILES = 8


@pytest.mark.slow
@pytest.mark.omniglot
def test_quick_mode_runs_every_stage_and_packs_the_results(tmp_path, repo_root, omniglot_root):
    out = tmp_path / "out"
    env = {
        **os.environ,
        "WORK": str(tmp_path / "work"),
        "LASIUM_DATA": str(omniglot_root),
        "LASIUM_CACHE": os.environ.get("LASIUM_CACHE", str(tmp_path / "cache")),
        "OMP_NUM_THREADS": "1",
        # a slow or busy CI machine must not turn a stage into a timeout: the sizes are --quick's, the limits wide
        "TOTAL_SECONDS": "2100",
        "BENCH_GEN_TIMEOUT": "400",
        "BENCH_TRAIN_TIMEOUT": "400",
        "BENCH_EVAL_TIMEOUT": "200",
        "CURVE_TIMEOUT": "600",
        # the reproduction's quick run has its own test (test_eval_repro): here its stage is only skipped
        "REPRO_MIN_SECONDS": "100000",
        "PYTHON": os.environ.get("PYTHON", "python3"),
    }
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", str(out), "--quick"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= MAX_FILES and {"summary.json", "gpu_check.log", "results.tar.gz"} <= set(files), files
    summary = json.loads((out / "summary.json").read_text())
    status = {s["name"]: s["status"] for s in summary["stages"]}
    for name in (
        "fit-gan",
        "fit-vae",
        "export-gan",
        "export-vae",
        "bench-gen",
        "bench-train",
        "bench-eval",
        "epoch-curve",
    ):
        assert status.get(name) == "ok", (name, status, result.stdout[-3000:])
    assert status.get("repro") == "skipped", status
    assert summary["bundled_gan"] and summary["bundled_vae"]
    assert set(summary["bench_eval"]["shots"]) == {"1", "5"}
    # the fit kept its untrained GAN (epoch 0); the curve scored it and the final model (1 epoch), with the GAN's σ
    assert [(r["epochs"], r["status"]) for r in summary["epoch_curve"]["gan"]] == [(0, "ok"), (1, "ok")]
    assert {r["sigma"] for r in summary["epoch_curve"]["gan"]} == {STRATEGY_PARAMETERS["protonets"]["gan"]["n"]}
    with tarfile.open(out / "results.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("omniglot-gan/model.safetensors") for n in names)
    assert any(n.endswith("figures/bench_eval.json") for n in names)
    assert any(n.endswith("results/accuracy-vs-gan-epochs.png") for n in names)
