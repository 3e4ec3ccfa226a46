"""lasium-fit on a CPU: one training step with every module channels-last (the default, ``build_trainer``) against
plain NCHW, for the GAN and the VAE.

Each model's two trainers are built from the same seed and run the same uint8 batch and noise, in interleaved rounds
(A, B, A, B, ...) so that a machine busy with other work slows both alike; the figure is the ratio of the median
step times, measured in one run. Images are random (speed does not depend on them); the architectures are those
``lasium-fit`` builds for the image shape (``--image-size 28 --channels 1``: the Omniglot GAN and VAE).

    python benchmarks/bench_fit.py --quick                                     # a smoke run, seconds
    python benchmarks/bench_fit.py --json-out results/bench_fit_cpu.json      # one thread, batch 64
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from lasium.generate import FitConfig, build_trainer

LEARNING_RATES = {"gan": 3e-4, "vae": 1e-3}  # the authors' (lasium-fit's defaults); speed does not depend on them


def step_seconds(trainer: Any, batch: torch.Tensor, noises: list[torch.Tensor], steps: int) -> float:
    """Mean seconds of ``steps`` training steps."""
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(batch, noises)
    return (time.perf_counter() - start) / steps


def bench_model(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Median step seconds of each layout and their ratio (NCHW / channels-last: > 1 means channels-last is faster)."""
    shape = (args.image_size, args.image_size, args.channels)
    config = FitConfig(
        model=model, dataset="memory", batch_size=args.batch_size, device="cpu", lr=LEARNING_RATES[model]
    )
    cpu = torch.device("cpu")
    trainers = {
        "channels_last": build_trainer(config, shape, cpu, cpu_channels_last=True),
        "nchw": build_trainer(config, shape, cpu, cpu_channels_last=False),
    }
    rng = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (args.batch_size, args.channels, args.image_size, args.image_size), generator=rng)
    batch = batch.to(torch.uint8)
    noises = [torch.randn(s, generator=rng) for s in trainers["nchw"].noise_shapes(args.batch_size)]
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for trainer in trainers.values():  # warm-up: oneDNN primitive creation, Adam state
        trainer.train()
        step_seconds(trainer, batch, noises, 2)
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            times[name].append(step_seconds(trainer, batch, noises, args.steps))
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        "ms_per_step": {name: round(1e3 * m, 1) for name, m in median.items()},
        "images_per_second": {name: round(args.batch_size / m, 1) for name, m in median.items()},
        "speedup_channels_last": round(median["nchw"] / median["channels_last"], 3),
        "rounds": args.rounds,
        "steps_per_round": args.steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small images, few steps (a smoke run)")
    parser.add_argument("--models", default="gan,vae")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per layout")
    parser.add_argument("--steps", type=int, default=5, help="steps per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.rounds, args.steps = 16, 2, 1
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {
        "device": platform.processor() or platform.machine() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "image_shape": [args.image_size, args.image_size, args.channels],
        "quick": args.quick,
    }
    for model in args.models.split(","):
        report[model] = bench_model(model, args)
        print(json.dumps({model: report[model]}, indent=2), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
