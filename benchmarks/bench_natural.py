"""Speed at 84×84×3 (issue 29): each stage of the pipeline beside the bare model's cost, measured in one run.

* fit: ``lasium.generate.models.fit.fit`` on N images, one epoch (loading, steps, checkpoint, sample grid)
  against ``GANTrainer.step`` on a batch already in memory;
* gen: ``lasium-gen --generator FIT`` run as a command (startup, anchors, decoding, shards, manifest, card)
  against ``Generator.decode`` of as many tasks' latents in the job's call size;
* train: ``lasium-train --shards GEN`` run as a command, ProtoNets and MAML, against ``meta_step`` on in-memory
  meta-batches;
* eval: ``lasium-eval --checkpoint TRAIN --dataset imagefolder:PATH`` run as a command against ``score_episodes``
  on in-memory tasks of the same shape (5-way, 1 shot, 15 queries), one task at a time (the CPU's chunk). The
  command keeps freed memory for reuse (``lasium.runtime.keep_freed_memory``: glibc otherwise maps and page-faults
  every buffer over 32 MiB again for each task), so the bare model is timed under the same setting; it is
  process-wide, which is why the eval stages run last.

Ratio = the stage's seconds per unit (image, task) / the bare model's: 1.0 means the command costs what its network
costs; the issue's bar is 1.5. The bare model is timed before and after each stage (A-B-A) and the faster of the two
kept, so a busy machine slows both alike. Each command runs twice, for n and 2n units: ``ratio`` is its whole run of
2n units against the bare model's 2n (start-up included), ``marginal_ratio`` what one more unit costs,
(t(2n) − t(n)) / n, against the bare model's, and ``fixed_seconds`` = 2 t(n) − t(2n) what a run costs before its
first unit (Python and torch imports, loading, the set card, the final checkpoint). ``ratio_after_imports`` is the
whole-run ratio without what ``python -c "import torch"`` costs in the same run (``startup_seconds``; for lasium-train
also ``torch._dynamo``, which ``torch.optim`` imports when an optimizer is built): the part of the gap lasium could act
on.

Also: the DCGAN family against today's 84-px net (the reference net stretched: ``gan_architecture((84, 84, 3))``),
bare training steps interleaved over ``--rounds`` rounds.

Public API only (lasium's modules and commands); the image folder is drawn by ``lasium.data.draw_colour_folder``.

    python benchmarks/bench_natural.py --quick                       # smoke run, a few minutes on 2 cores
    python benchmarks/bench_natural.py --json-out results/bench_natural_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lasium.data import draw_colour_folder
from lasium.evaluate import Episodes, score_episodes
from lasium.generate import FitConfig, GANTrainer, architectures, choose_architecture, fit, load_generator
from lasium.precision import autocast_for
from lasium.runtime import cpu_model, keep_freed_memory
from lasium.tasks import to_device
from lasium.train import LearnerConfig, build_learner

SHAPE = (84, 84, 3)
WAYS, SHOTS, QUERIES, EVAL_QUERIES = 5, 1, 5, 15


class Images:
    """An in-memory image set (what ``fit`` takes as ``data``): seeded random 84×84×3 uint8."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.images = np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)
        self.image_ids = [f"{i}" for i in range(n)]
        self.fingerprint = f"bench-natural-{n}-{seed}"


def per_call(fn: Callable[[], Any], calls: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def command(module: str, cwd: Path, *args: str) -> float:
    """Wall seconds of ``python -m module ARGS`` (what the user's command costs, startup included)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{module} {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return seconds


def import_seconds(code: str, repeats: int = 3) -> float:
    """Fastest wall seconds of ``python -c CODE`` (what every command pays before its own work: the interpreter
    and torch's import)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def startup_share(stages: dict[str, Any], startup: dict[str, float]) -> None:
    """Add to each command stage ``ratio_after_imports``: its whole-run ratio with Python and torch's import (and,
    for lasium-train, torch._dynamo's, which ``torch.optim`` pulls in) taken out of its wall time."""
    for name, stage in stages.items():
        if "seconds" not in stage:
            continue  # fit runs in-process: no start-up
        imports = startup["python_torch_dynamo" if name.startswith("train") else "python_torch"]
        whole = stage["seconds"][1]
        stage["ratio_after_imports"] = round(stage["ratio"] * (whole - imports) / whole, 2)


def two_runs(run: Callable[[int], float], n: int, bare: float) -> dict[str, Any]:
    """``run(k)`` → wall seconds of the command for k units, at n and 2n; ratios against ``bare`` s/unit."""
    once, twice = run(n), run(2 * n)
    return {
        "units": [n, 2 * n],
        "seconds": [round(once, 2), round(twice, 2)],
        "fixed_seconds": round(2 * once - twice, 2),
        "stage_units_per_s": round(2 * n / twice, 3),
        "ratio": round(twice / (2 * n) / bare, 2),
        "marginal_ratio": round((twice - once) / n / bare, 2),
    }


def gan_step_seconds(arch: Any, batch: int, steps: int) -> float:
    """Seconds per training step of a GAN family's bare trainer (random uint8 batch, the trainer's own noise)."""
    torch.manual_seed(0)
    trainer = GANTrainer(arch, 3e-4, torch.device("cpu"))
    trainer.train()
    real = torch.randint(0, 256, (batch, SHAPE[2], *SHAPE[:2]), dtype=torch.uint8)
    noise = [torch.randn(s) for s in trainer.noise_shapes(batch)]
    return per_call(lambda: trainer.step(real, noise), steps)


def bench_architectures(args: argparse.Namespace) -> dict[str, Any]:
    """DCGAN (chosen at 84×84×3) against today's stretched reference net: bare steps, interleaved rounds."""
    reference = architectures()["lasium-gan-v1"].for_shape(SHAPE, 128)  # today's 84-px net: the reference stretched
    nets = {"dcgan": choose_architecture("gan", SHAPE, 128), "reference-stretched": reference}
    times: dict[str, list[float]] = {k: [] for k in nets}
    for r in range(args.rounds):
        for name in nets if r % 2 == 0 else reversed(list(nets)):
            times[name].append(gan_step_seconds(nets[name], args.batch, args.fit_steps))
    best = {k: min(v) for k, v in times.items()}
    ips = {k: args.batch / s for k, s in best.items()}
    return {
        "batch": args.batch,
        "images_per_s": {k: round(v, 2) for k, v in ips.items()},
        "speedup_dcgan_vs_reference": round(ips["dcgan"] / ips["reference-stretched"], 2),
        "architectures": {k: a.to_json() for k, a in nets.items()},
    }


def bench_fit(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    arch = choose_architecture("gan", SHAPE, 128)
    bare = [gan_step_seconds(arch, args.batch, args.fit_steps) / args.batch]
    data = Images(args.fit_images)
    cfg = FitConfig(model="gan", dataset="bench", epochs=1, batch_size=args.batch, device="cpu")
    start = time.perf_counter()
    result = fit(cfg, root / "gan", data=data, progress=False)
    stage = (time.perf_counter() - start) / args.fit_images
    bare.append(gan_step_seconds(arch, args.batch, args.fit_steps) / args.batch)
    return {
        "images": args.fit_images,
        "bare_images_per_s": round(1 / min(bare), 2),
        "stage_images_per_s": round(1 / stage, 2),
        "fit_reported_images_per_s": round(result.images_per_second, 2),
        "ratio": round(stage / min(bare), 2),
    }


def bench_gen(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    model = load_generator(root / "gan")
    per_task = WAYS * (SHOTS + QUERIES)
    call = min(250, args.gen_tasks) * per_task  # the job's call: decode_tasks = min(250, tasks per shard)
    z = model.sample_prior(call, torch.Generator().manual_seed(0))

    def bare() -> float:
        return per_call(lambda: model.decode(z), 1) / (call / per_task)

    def stage(k: int) -> float:
        return command(
            "lasium.generate.job.cli", root, "--generator", "gan", "--strategy", "ro", "--n-tasks", str(k),
            "--tasks-per-shard", str(args.gen_tasks), "--device", "cpu", "--quiet", "--out", f"tasks-{k}",
        )  # fmt: skip

    before = bare()
    runs = two_runs(stage, args.gen_tasks, before)
    best = min(before, bare())
    runs.update(
        ratio=round(runs["seconds"][1] / (2 * args.gen_tasks) / best, 2),
        marginal_ratio=round((runs["seconds"][1] - runs["seconds"][0]) / args.gen_tasks / best, 2),
    )
    return {"bare_tasks_per_s": round(1 / best, 3), **runs}


def bench_train(args: argparse.Namespace, root: Path, algo: str, iterations: int, meta_batch: int) -> dict[str, Any]:
    device = torch.device("cpu")
    autocast, _ = autocast_for("auto", device)
    g = torch.Generator().manual_seed(0)
    h, w, c = SHAPE
    s = torch.randint(0, 256, (meta_batch, WAYS, SHOTS, h, w, c), dtype=torch.uint8, generator=g)
    q = torch.randint(0, 256, (meta_batch, WAYS, QUERIES, h, w, c), dtype=torch.uint8, generator=g)
    perm = torch.stack([torch.randperm(WAYS, generator=g) for _ in range(meta_batch)])

    def bare() -> float:
        torch.manual_seed(0)
        learner = build_learner(LearnerConfig(algo=algo, ways=WAYS, image_shape=SHAPE))
        optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
        batch = to_device(s, q, perm, device)

        def step() -> None:  # what lasium-train's meta-step does on one process
            with autocast():
                out = learner.meta_gradients(*batch)
            for name, p in learner.named_parameters():
                p.grad = out.grads[name].to(p.dtype)
            optimizer.step()

        return per_call(step, max(1, iterations // 2)) / meta_batch

    def stage(k: int) -> float:
        return command(
            "lasium.train.cli", root, "--shards", f"tasks-{2 * args.gen_tasks}", "--algo", algo, "--iterations",
            str(k), "--meta-batch", str(meta_batch), "--val-dataset", "none", "--checkpoint-every", "0", "--device",
            "cpu", "--quiet", "--out", f"run-{algo}-{k}",
        )  # fmt: skip

    before = bare()
    runs = two_runs(lambda k: stage(k), iterations, before * meta_batch)
    best = min(before, bare())
    per_step = best * meta_batch
    runs.update(
        ratio=round(runs["seconds"][1] / (2 * iterations) / per_step, 2),
        marginal_ratio=round((runs["seconds"][1] - runs["seconds"][0]) / iterations / per_step, 2),
        stage_units_per_s=round(2 * iterations * meta_batch / runs["seconds"][1], 3),
    )
    return {"meta_batch": meta_batch, "bare_tasks_per_s": round(1 / best, 3), "units_are": "iterations", **runs}


def bench_eval(args: argparse.Namespace, root: Path, algo: str, folder: Path, iterations: int) -> dict[str, Any]:
    device = torch.device("cpu")
    autocast, _ = autocast_for("auto", device)
    rng = np.random.default_rng(0)
    n = args.eval_tasks
    episodes = Episodes(
        shots=SHOTS,
        support=rng.integers(0, 256, (n, WAYS, SHOTS, *SHAPE), dtype=np.uint8),
        query=rng.integers(0, 256, (n, WAYS, EVAL_QUERIES, *SHAPE), dtype=np.uint8),
        perm=np.stack([rng.permutation(WAYS) for _ in range(n)]),
        digest="random",
    )
    torch.manual_seed(0)
    learner = build_learner(LearnerConfig(algo=algo, ways=WAYS, image_shape=SHAPE)).eval()
    kept = keep_freed_memory()  # what lasium-eval does first; process-wide, so the eval stages come last

    def bare() -> float:
        def run() -> None:  # lasium-eval's scorer on a CPU: one task per call
            score_episodes(learner, episodes, device, steps=args.adapt_steps, lr=0.4, chunk=1, autocast=autocast)

        return per_call(run, 1) / n

    def stage(k: int) -> float:
        return command(
            "lasium.evaluate.cli", root, "--checkpoint", f"run-{algo}-{iterations}", "--dataset",
            f"imagefolder:{folder}", "--shots", str(SHOTS), "--queries", str(EVAL_QUERIES), "--tasks", str(k),
            "--adapt-steps", str(args.adapt_steps), "--device", "cpu", "--out", f"eval-{algo}-{k}.json",
        )  # fmt: skip

    before = bare()
    runs = two_runs(stage, n // 2, before)
    best = min(before, bare())
    runs.update(
        ratio=round(runs["seconds"][1] / n / best, 2),
        marginal_ratio=round((runs["seconds"][1] - runs["seconds"][0]) / (n // 2) / best, 2),
    )
    runs["stage_seconds_per_task"] = round(runs["seconds"][1] / n, 4)
    del runs["stage_units_per_s"]
    return {
        "adapt_steps": args.adapt_steps if algo != "protonets" else 0,
        "keep_freed_memory": kept,
        "bare_seconds_per_task": round(best, 4),
        **runs,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="Smaller counts (a smoke run).")
    p.add_argument("--only", choices=["architectures", "pipeline"], help="Run one part only.")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--fit-steps", type=int, default=4)
    p.add_argument("--fit-images", type=int, default=256)
    p.add_argument("--gen-tasks", type=int, default=40, help="n of the lasium-gen runs")
    p.add_argument("--proto-iterations", type=int, default=4, help="n of the ProtoNets runs (meta-batch 4)")
    p.add_argument("--maml-iterations", type=int, default=2, help="n of the MAML runs (meta-batch 2)")
    p.add_argument("--eval-tasks", type=int, default=20, help="2n of the evaluation runs")
    p.add_argument("--adapt-steps", type=int, default=5)
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.batch, args.fit_steps, args.fit_images = 2, 16, 2, 64
        args.gen_tasks, args.eval_tasks, args.adapt_steps = 10, 6, 2
        args.proto_iterations, args.maml_iterations = 2, 1
    torch.manual_seed(0)
    out: dict[str, Any] = {
        "benchmark": "bench_natural",
        "image_shape": list(SHAPE),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }
    if args.only in (None, "architectures"):
        out["architectures"] = bench_architectures(args)
        print(
            json.dumps(out["architectures"]["images_per_s"]),
            "speed-up",
            out["architectures"]["speedup_dcgan_vs_reference"],
            flush=True,
        )
    if args.only in (None, "pipeline"):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            folder = draw_colour_folder(root / "pics", {"train": (5, 4), "val": (5, 4), "test": (5, 16)})
            stages: dict[str, Any] = {}
            for name, fn in (
                ("fit", lambda: bench_fit(args, root)),
                ("gen", lambda: bench_gen(args, root)),
                ("train protonets", lambda: bench_train(args, root, "protonets", args.proto_iterations, 4)),
                ("train maml", lambda: bench_train(args, root, "maml", args.maml_iterations, 2)),
                ("eval protonets", lambda: bench_eval(args, root, "protonets", folder, args.proto_iterations)),
                ("eval maml", lambda: bench_eval(args, root, "maml", folder, args.maml_iterations)),
            ):
                stages[name] = fn()
                print(name, json.dumps(stages[name]), flush=True)
            startup = {
                "python_torch": round(import_seconds("import torch"), 2),
                "python_torch_dynamo": round(import_seconds("import torch, torch._dynamo"), 2),
            }
            startup_share(stages, startup)
            print("start-up", json.dumps(startup), flush=True)
            out["startup_seconds"], out["stages"] = startup, stages
    out["load_average_at_end"] = list(os.getloadavg())
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
