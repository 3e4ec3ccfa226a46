"""What a ``lasium-gen`` run makes its tasks with, and the set header that records it.

A run either synthesizes tasks with a generator (LASIUM: :func:`generator_setup`) or takes them from a
source that makes whole shards on its own (real episodes, UMTRA, CACTUs: :func:`source_setup`). Either
way the result is the set's header (``config``, ``generator``, ``source``), which goes into every sidecar
and the manifest, and the object that makes the shards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lasium.generate.job.cactus_source import CactusTaskSource
from lasium.generate.job.config import GenerationConfig
from lasium.generate.job.real_source import RealTaskSource
from lasium.generate.job.umtra_source import UmtraTaskSource
from lasium.generate.models.interface import Generator
from lasium.generate.synthesis.anchor_pool import AnchorPool
from lasium.generate.synthesis.strategies import parameter_name
from lasium.generate.synthesis.synthesizer import SynthesisSpec, TaskSynthesizer

TaskSource = RealTaskSource | UmtraTaskSource | CactusTaskSource
"""A source that makes whole shards on its own: ``image_shape``, ``describe()`` (the manifest's ``source``),
``shard_batch(shard, first_task, num_tasks) -> TaskBatch``."""


@dataclass
class JobSetup:
    """The header of a run and what makes its shards: ``synth`` (a generator) or ``tasks`` (a source)."""

    header: dict[str, Any]
    model: Generator | None = None
    synth: TaskSynthesizer | None = None
    tasks: TaskSource | None = None


def set_cudnn_flags(device: torch.device) -> None:
    """No cuDNN autotuning: it picks kernels by timing, so two runs could compute different bytes."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False


def prepare_network(model: Generator, device: torch.device, *, compile: bool) -> None:
    """The one place the job changes how the generator's network runs (not what it computes).

    On a CPU the network runs channels-last: oneDNN's convolutions are fast in that layout, fp32 and bf16 alike
    (fp32 on a 2-core EPYC: the bundled GAN decodes 1.6-1.8x and the VAE 1.9x faster; about 2x for bf16 on
    AVX512-BF16). The sums run in another order, so about 1 uint8 pixel in 20,000 can differ from a
    contiguous-layout decode; reruns on one machine stay byte-identical. ``compile``: ``torch.compile`` the
    network; the protocol's ``decode`` then runs it.
    """
    if device.type == "cpu":
        model.network = model.network.to(memory_format=torch.channels_last)
    if compile:
        model.network = torch.compile(model.network, dynamic=False)


def synthesis_spec(config: GenerationConfig, set_config: dict[str, Any]) -> SynthesisSpec:
    """What defines the tasks, from the resolved set config (σ or α under the strategy's parameter name)."""
    assert config.strategy is not None
    return SynthesisSpec(
        strategy=config.strategy,
        parameter=float(set_config[parameter_name(config.strategy)]),
        epsilon=float(set_config["epsilon"]),
        ways=config.ways,
        shots=config.shots,
        queries=config.queries,
        anchor_chunk=config.anchor_chunk,
        decode_tasks=config.effective_decode_tasks,
        save_latents=config.save_latents,
    )


def load_model(config: GenerationConfig, device: torch.device) -> Generator:
    from lasium.generate.models.loading import load_generator

    return load_generator(
        config.generator,
        device=device,
        latent_dim=config.latent_dim,
        output_range=config.output_range,
    )


def encode_anchor_pool(
    config: GenerationConfig, model: Generator, device: torch.device
) -> tuple[AnchorPool | None, dict[str, Any] | None]:
    """VAEs draw anchors from encoded real images (the pool and the manifest's source record).

    GANs draw them from the prior.
    """
    if model.kind != "vae":
        return None, None
    from lasium.generate.synthesis.anchor_pool import vae_anchor_pool, vae_source_record

    pool = vae_anchor_pool(model, config.dataset, data_root=config.data_root, device=device)
    return pool, vae_source_record(pool, config.dataset)


def generator_setup(config: GenerationConfig, device: torch.device, model: Generator | None) -> JobSetup:
    """Set up synthesis with a generator: each step below changes what the shards hold or how fast they come."""
    c = config
    set_cudnn_flags(device)
    model = model if model is not None else load_model(c, device)
    set_config = c.set_config(
        image_shape=tuple(model.image_shape),
        latent_dim=int(model.latent_dim),
        generator_kind=model.kind,
        device_type=device.type,
    )
    pool, source = encode_anchor_pool(c, model, device)
    bf16 = set_config["precision"] == "bf16-autocast"
    prepare_network(model, device, compile=c.compile)
    synth = TaskSynthesizer(model, synthesis_spec(c, set_config), device=device, anchor_pool=pool, autocast=bf16)
    header = {"config": set_config, "generator": model.describe(), "source": source}
    return JobSetup(header, model=model, synth=synth)


def source_setup(
    config: GenerationConfig, device: torch.device, model: Generator | None, log: Callable[[str], None]
) -> JobSetup:
    """Set up a source that makes whole shards without a generator: real episodes, UMTRA or CACTUs."""
    c = config
    tasks: TaskSource
    if c.source == "real":
        tasks = RealTaskSource(
            c.dataset, c.split, ways=c.ways, shots=c.shots, queries=c.queries, seed=c.seed, data_root=c.data_root
        )
    elif c.source == "cactus":
        tasks = CactusTaskSource(
            c.dataset,
            spec=c.cactus_spec(),
            seed=c.seed,
            device=device,
            embedding=c.embedding,
            data_root=c.data_root,
            model=model,
            progress=c.progress,
            log=log,
        )
    else:
        tasks = UmtraTaskSource(
            c.dataset,
            spec=c.umtra_spec(),
            shots=c.shots,
            seed=c.seed,
            device=device,
            data_root=c.data_root,
            progress=c.progress,
        )
    set_config = c.set_config(
        image_shape=tasks.image_shape, latent_dim=None, generator_kind=None, device_type=device.type
    )
    header = {"config": set_config, "generator": None, "source": tasks.describe()}
    return JobSetup(header, model=model, tasks=tasks)


def set_dataset_label(config: GenerationConfig, model: Generator | None) -> str:
    """What ``shards/<dataset>/…`` names: the images of real, UMTRA and CACTUs tasks, the data the generator was
    fitted on (bundled and lasium-fit generators), else (an external generator) the generator's name."""
    from lasium.generate.job.config import dataset_label, generator_label

    if config.source != "generator" or model is None:
        return dataset_label(config.dataset)
    trained_on = getattr(model, "training_dataset", None)
    return dataset_label(trained_on) if trained_on else generator_label(str(model.name))
