"""Every size of the Omniglot reproduction (:class:`Sizes`, its named sets :data:`SIZES`, chosen by
``lasium-repro omniglot --sizes``) and the throughputs its budget guard assumes per device (:data:`RATES`).

The ``cpu`` sizes are the authors' budgets with distinct tasks (ProtoNets 8,000 iterations × 4, MAML 1,000 × 4,
second order, 5 inner steps; ``docs/reference-facts.md``, "Budgets")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Sizes:
    """Every size of the reproduction (defaults: the ``gpu`` sizes, planned for ~6 min on one H100/H200).

    JSON-ready (``dataclasses.asdict``): a results page records the sizes it ran with."""

    fit_minutes: float = 4.0  # --fit: wall-clock budget of lasium-fit
    fit_epochs: int = 300  # --fit: upper bound on epochs
    fit_limit: int = 0  # --fit: train on the first N images only (0 = all)
    gen_tasks_protonets: int = 60_000  # synthetic tasks per strategy for ProtoNets (one pass at meta-batch 32)
    gen_tasks_maml: int = 16_000  # synthetic tasks per strategy for MAML
    gen_tasks_real: int = 60_000  # real labeled train-split tasks (supervised upper bound)
    tasks_per_shard: int = 1000
    decode_tasks: int = 250  # tasks per generator call
    gen_workers: int = 4  # lasium-gen writer processes
    protonets_iterations: int = 1875
    protonets_meta_batch: int = 32
    maml_algo: str = "maml"  # second order, as in the paper (fomaml is several times faster)
    maml_iterations: int = 800  # 12.8k tasks: ~70 s of second-order MAML at ~200 tasks/s
    maml_meta_batch: int = 16
    maml_inner_steps: int = 5
    train_workers: int = 4  # DataLoader workers of lasium-train
    val_every: int = 250
    val_tasks: int = 200
    checkpoint_every: int = 0  # lasium-train --checkpoint-every: what an interrupted training continues from
    eval_tasks: int = 1000  # the protocol: 1000 test tasks per K_tr
    eval_tasks_maml: int = 0  # MAML rows: score only the first N of those same episodes (0 = all); CPU only
    gen_precision: str = "auto"  # lasium-gen --precision (bf16 halves CPU decoding time on AVX512-BF16 CPUs)
    eval_shots: str = "1,5"
    adapt_steps: int = 50  # the protocol: MAML adapts 50 steps of lr 0.4
    adapt_lr: float = 0.4
    preview_tasks: int = 4
    augment: str = (
        "auto"  # lasium-train --augment of every trained row (auto: shift5 for generated tasks, none for real)
    )
    train_precision: str = "auto"  # lasium-train --precision (auto: bf16 where native: CUDA, AVX512-BF16/AMX CPUs)
    eval_precision: str = "auto"  # lasium-eval --precision

    def learner_budget(self, algo: str) -> tuple[int, int, int]:
        """(iterations, meta-batch, generated tasks) of the preset for learner ``algo``: ProtoNets', else MAML's."""
        if algo == "protonets":
            return self.protonets_iterations, self.protonets_meta_batch, self.gen_tasks_protonets
        return self.maml_iterations, self.maml_meta_batch, self.gen_tasks_maml


SIZES: dict[str, Sizes] = {
    "gpu": Sizes(),
    # Reduced configuration for a 2-core CPU (about 1.5-2 h measured): fewer tasks and steps; MAML rows are scored on
    # the first 200 of the same 1000 test episodes, because 50-step adaptation of 1000 tasks takes ~40 min there.
    # The reference budgets of the authors' code with distinct tasks (every task drawn is a new one): ProtoNets 8,000
    # iterations x meta-batch 4 = 32,000 tasks, MAML 1,000 x 4 = 4,000 tasks (second order, 5 inner steps), every row
    # scored on all 1000 test tasks. Several hours on a 2-core CPU: run it with --resume across sessions.
    "cpu": Sizes(
        gen_tasks_protonets=32_000,
        gen_tasks_maml=4000,
        gen_tasks_real=32_000,
        tasks_per_shard=1000,
        decode_tasks=50,
        gen_workers=1,
        protonets_iterations=8000,
        protonets_meta_batch=4,
        maml_iterations=1000,
        maml_meta_batch=4,
        train_workers=1,
        val_every=1000,
        val_tasks=100,
        checkpoint_every=500,  # a session that ends mid-training loses at most ~15 min of it (--resume continues)
    ),
    # The earlier reduced configuration (2,000 tasks reused 4x; MAML rows scored on the first 200 test tasks): smoke
    # runs.
    "cpu-reduced": Sizes(
        gen_tasks_protonets=2000,
        gen_tasks_maml=1000,
        gen_tasks_real=2000,
        tasks_per_shard=500,
        decode_tasks=50,
        gen_workers=1,
        gen_precision="bf16",
        protonets_iterations=1000,
        protonets_meta_batch=8,
        maml_iterations=300,
        maml_meta_batch=4,
        train_workers=1,
        val_every=250,
        val_tasks=100,
        eval_tasks_maml=200,
    ),
    "quick": Sizes(
        fit_minutes=0.5,
        fit_epochs=1,
        fit_limit=256,
        gen_tasks_protonets=48,
        gen_tasks_maml=16,
        gen_tasks_real=48,
        tasks_per_shard=12,
        decode_tasks=12,
        gen_workers=1,
        protonets_iterations=12,
        protonets_meta_batch=4,
        maml_iterations=3,
        maml_meta_batch=2,
        train_workers=1,
        val_every=6,
        val_tasks=10,
        checkpoint_every=6,
        eval_tasks=10,
        adapt_steps=5,
        preview_tasks=2,
    ),
}

# CACTUs' one-off cost before its first task (VAE-encoding the 24,000 train images, then k-means with k = 500 for
# P = 100 partitions, scikit-learn on one core; 420 s measured at nice 10 on a busy 2-core CPU; cached under
# $LASIUM_CACHE/cactus, so the row's second set, of the other learner, reuses it).
CACTUS_SETUP_CPU = 600.0

# Rough throughputs for the budget guard's estimates (per second; "image_step" = seconds per support image per
# MAML step at evaluation). GPU figures follow H200 measurements of the benchmarks, discounted for small runs.
RATES: dict[str, dict[str, float]] = {
    "cuda": dict(
        startup=8.0,
        gen=10000.0,
        real=5000.0,
        protonets=4000.0,
        maml=180.0,
        fomaml=700.0,
        eval_proto=0.002,
        image_step=1.5e-5,
        umtra=5000.0,
        cactus=5000.0,
        cactus_setup=120.0,
    ),
    # One stage on one thread while the other core runs another (two --only drivers), fp32 (no native bf16), measured
    # on a 2-core AMD EPYC: lasium-gen 14 tasks/s per process with two running (the GAN's folded output convolution
    # and freed buffers kept: ro-maml-16000's 1,000-task shards every 66-73 s beside a VAE fit; 7.4 tasks/s before,
    # 1,000-task shards in ~135 s), ProtoNets training 11-12 tasks/s at meta-batch 4 (channels-last throughout;
    # protonets-ro beside a MAML evaluation), MAML (second order) 1.8 tasks/s (maml-n: 4,000 tasks in 2,192 s);
    # ProtoNets evaluation from the sweep's stages (2,000 episodes in 430-770 s). first-order MAML is the old ratio to
    # MAML, not measured. CPUs with native bf16 run gen and training faster than this.
    "cpu": dict(
        startup=8.0,
        gen=13.0,
        real=500.0,
        protonets=11.0,
        maml=1.8,
        fomaml=4.5,
        eval_proto=0.25,
        # measured: maml-n's 1000 1-shot tasks (50 steps) in ~960 s and 5-shot ones at ~2.75 s each, one task at a time
        # channels-last (maml-ro, chunk 2 NCHW: 5,954 s for both)
        image_step=2.5e-3,
        umtra=500.0,
        cactus=500.0,
        cactus_setup=CACTUS_SETUP_CPU,
    ),
}
# A CPU with native bf16 (avx512_bf16 or AMX) at --precision auto or bf16, one stage per core beside another, from
# the stage records of sweep pages run on a 2-core AMD EPYC with avx512_bf16 (results/levers, 2026-12-05; per 5-way
# task, wider sets counted by their classes): lasium-gen 23-30 tasks/s (20-, 40-, 60-way ProtoNets sets; 5-way MAML
# sets ~40), ProtoNets training 44-48 tasks/s at meta-batch 4, MAML (second order) 5.5-6.7 tasks/s (4,000 tasks in
# 597-728 s), ProtoNets scoring 2,000 episodes in 52-57 s, MAML scoring 1,000 tasks at K_tr 1 and 5 (50 steps) in
# 1,169-1,659 s. First-order MAML keeps its CPU ratio to MAML (not measured there); the sources not measured there
# (real, UMTRA, CACTUs) keep the CPU figures.
RATES["cpu-bf16"] = RATES["cpu"] | dict(
    gen=25.0,
    protonets=45.0,
    maml=5.5,
    fomaml=5.5 * RATES["cpu"]["fomaml"] / RATES["cpu"]["maml"],
    eval_proto=0.03,
    image_step=1.1e-3,
)


def rates_key(device_type: str, precision: str = "auto") -> str:
    """The :data:`RATES` entry of a device (``describe_device``'s type) at a ``--precision``: ``cpu-bf16`` on a CPU
    that computes bf16 natively unless fp32 is asked for, else the device type."""
    if device_type == "cpu" and precision != "fp32":
        from lasium.precision import cpu_has_native_bf16

        if cpu_has_native_bf16():
            return "cpu-bf16"
    return device_type


def training_seconds(rates: dict[str, float], algo: str, tasks_drawn: int, ways: int = 5) -> float:
    """Seconds ``lasium-train`` takes to draw ``tasks_drawn`` tasks (iterations × meta-batch) of ``ways`` classes,
    without its startup (the rates are per 5-way task)."""
    return tasks_drawn * ways / 5 / rates[algo]


def scoring_seconds(
    rates: dict[str, float], algo: str, tasks: int, shots: tuple[int, ...] | list[int], adapt_steps: int
) -> float:
    """Seconds ``lasium-eval`` takes to score ``tasks`` 5-way tasks at each K_tr of ``shots``, without its startup:
    ProtoNets per episode, MAML per support image and adaptation step."""
    if algo == "protonets":
        return rates["eval_proto"] * tasks * len(shots)
    return rates["image_step"] * tasks * adapt_steps * 5 * sum(shots)
