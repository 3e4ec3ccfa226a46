"""The generative models on a CPU: what the channels-last layout and the GAN's folded output convolution buy.

1. Training (``lasium-fit``): one step of the GAN and of the VAE with plain NCHW modules and ``nn.Conv2d`` (the
   earlier path), channels-last modules (``build_trainer``'s default on a CPU), and, for the GAN, channels-last with
   the last convolution as a matrix product and a fold (``GANGenerator.cpu_fold_output``, the default).
2. Decoding (``lasium-gen``): the bundled-architecture GAN generator, prepared as ``lasium-gen`` prepares it on a CPU
   (channels-last), decoding one call's latents (50 tasks x 30 images) with ``nn.Conv2d`` and with the fold.

Each variant is built from the same seed and runs the same inputs, in interleaved rounds (A, B, C, A, B, C, ...) so
that a machine busy with other work slows all alike; the figures are ratios of median times, measured in one run.
Inputs are random (speed does not depend on them); the architectures are those ``lasium-fit`` builds for the image
shape (``--image-size 28 --channels 1``: the Omniglot GAN and VAE). Run it with glibc keeping freed memory, as the
commands do (``lasium.runtime.keep_freed_memory``), for the figures the commands see.

    python benchmarks/bench_fit.py --quick                                     # a smoke run, seconds
    python benchmarks/bench_fit.py --json-out results/bench_fit_cpu.json      # one thread, batch 64
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lasium.generate import FitConfig, build_trainer, choose_architecture
from lasium.runtime import keep_freed_memory

LEARNING_RATES = {"gan": 3e-4, "vae": 1e-3}  # the authors' (lasium-fit's defaults); speed does not depend on them


def interleaved(variants: dict[str, Callable[[], Any]], rounds: int, repeats: int) -> dict[str, float]:
    """Median seconds of one call of each variant over ``rounds`` interleaved rounds of ``repeats`` calls each."""
    for fn in variants.values():  # warm-up: oneDNN primitive creation, Adam state
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            times[name].append((time.perf_counter() - start) / repeats)
    return {name: statistics.median(t) for name, t in times.items()}


def report(median: dict[str, float], baseline: str, items: int, unit: str, args: argparse.Namespace) -> dict[str, Any]:
    """Times, rates and each variant's speed-up over ``baseline``."""
    return {
        "ms": {name: round(1e3 * m, 1) for name, m in median.items()},
        f"{unit}_per_second": {name: round(items / m, 1) for name, m in median.items()},
        f"speedup_over_{baseline}": {name: round(median[baseline] / m, 3) for name, m in median.items()},
        "rounds": args.rounds,
        "repeats_per_round": args.steps,
    }


def bench_training(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """One training step per variant (layout, and for the GAN the output convolution)."""
    shape = (args.image_size, args.image_size, args.channels)
    config = FitConfig(
        model=model, dataset="memory", batch_size=args.batch_size, device="cpu", lr=LEARNING_RATES[model]
    )
    cpu = torch.device("cpu")
    trainers = {
        "nchw": build_trainer(config, shape, cpu, cpu_channels_last=False),
        "channels_last": build_trainer(config, shape, cpu, cpu_channels_last=True),
    }
    if model == "gan":
        trainers["channels_last_fold"] = build_trainer(config, shape, cpu, cpu_channels_last=True)
        for name in ("nchw", "channels_last"):
            trainers[name].model.cpu_fold_output = False  # the earlier output convolution (nn.Conv2d)
    rng = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (args.batch_size, args.channels, args.image_size, args.image_size), generator=rng)
    batch = batch.to(torch.uint8)
    noises = [torch.randn(s, generator=rng) for s in trainers["nchw"].noise_shapes(args.batch_size)]
    for trainer in trainers.values():
        trainer.train()
    variants = {name: (lambda t=t: t.step(batch, noises)) for name, t in trainers.items()}
    return report(interleaved(variants, args.rounds, args.steps), "nchw", args.batch_size, "images", args)


def bench_decode(args: argparse.Namespace) -> dict[str, Any]:
    """The GAN generator decoding one ``lasium-gen`` call's latents with ``nn.Conv2d`` and with the fold."""
    arch = choose_architecture("gan", (args.image_size, args.image_size, args.channels), None)
    torch.manual_seed(0)
    conv, fold = arch.build().eval(), arch.build().eval()
    fold.load_state_dict(conv.state_dict())
    for net in (conv, fold):
        net.to(memory_format=torch.channels_last)  # as lasium-gen prepares a generator on a CPU
    conv.cpu_fold_output = False
    latents = torch.randn(args.decode_images, arch.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(conv(latents[:8]), fold(latents[:8]), rtol=1e-4, atol=1e-5)
        variants = {"conv": lambda: conv(latents), "fold": lambda: fold(latents)}
        return report(interleaved(variants, args.rounds, 1), "conv", args.decode_images, "images", args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small batches, few rounds (a smoke run)")
    parser.add_argument("--models", default="gan,vae", help="training benchmarks to run")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--decode-images", type=int, default=1500, help="latents per decode call [50 tasks x 30]")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per variant")
    parser.add_argument("--steps", type=int, default=5, help="training steps per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.decode_images, args.rounds, args.steps = 16, 60, 2, 1
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "device": platform.processor() or platform.machine() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "keeps_freed_memory": keep_freed_memory(),
        "batch_size": args.batch_size,
        "image_shape": [args.image_size, args.image_size, args.channels],
        "quick": args.quick,
    }
    for model in [m for m in args.models.split(",") if m]:
        results[f"train_{model}"] = bench_training(model, args)
        print(json.dumps({f"train_{model}": results[f"train_{model}"]}, indent=2), flush=True)
    results["decode_gan"] = bench_decode(args)
    print(json.dumps({"decode_gan": results["decode_gan"]}, indent=2), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
