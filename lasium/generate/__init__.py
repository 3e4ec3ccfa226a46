"""lasium.generate: generative models, LASIUM task synthesis, and the ``lasium-gen`` batch job.

Four subpackages, each importing only the ones before it (and the core, ``lasium``):

- :mod:`lasium.generate.models`: the :class:`Generator` protocol and its wrappers, GAN and VAE networks,
  their fitting (``lasium-fit``), checkpoints, the bundled models, external generators, sample quality;
- :mod:`lasium.generate.synthesis`: anchors, the sampling strategies, the VAE anchor pool, the
  on-device :class:`TaskSynthesizer` and its host staging, UMTRA queries, CACTUs partitions;
- :mod:`lasium.generate.sources`: the task sources (LASIUM's generator, real episodes, UMTRA, CACTUs), each
  with its own options, and their registry :data:`TASK_SOURCES`;
- :mod:`lasium.generate.job`: the ``lasium-gen`` job (the config every source shares, shard planning, writer
  processes, output folder, command line).

Names are imported on first use (PEP 562), so ``import lasium.generate`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lasium.lazy import lazy_exports

_EXPORTS = {
    "Generator": "lasium.generate.models.interface",
    "ModuleGenerator": "lasium.generate.models.interface",
    "VAEGenerator": "lasium.generate.models.interface",
    "load_generator": "lasium.generate.models.loading",
    "generator_from_checkpoint": "lasium.generate.models.loading",
    "load_checkpoint": "lasium.generate.models.checkpoint",
    "BUNDLED_NAMES": "lasium.generate.models.bundled_registry",
    "bundled_folder": "lasium.generate.models.bundled_registry",
    "export_bundled": "lasium.generate.models.bundled_registry",
    "FitConfig": "lasium.generate.models.fit_config",
    "fit": "lasium.generate.models.fit",
    "build_trainer": "lasium.generate.models.fit",
    "sample_quality": "lasium.generate.models.quality",
    "ARCHITECTURES": "lasium.generate.models.architecture",
    "architectures": "lasium.generate.models.architecture",
    "choose_architecture": "lasium.generate.models.architecture",
    "GANTrainer": "lasium.generate.models.gan",
    "VAETrainer": "lasium.generate.models.vae",
    "export_generator": "lasium.generate.models.export",
    "resize_generator": "lasium.generate.models.resize",
    "STRATEGIES": "lasium.generate.synthesis.strategies",
    "STRATEGY_PARAMETERS": "lasium.generate.synthesis.presets",
    "REFERENCE_PARAMETERS": "lasium.generate.synthesis.presets",
    "default_parameter": "lasium.generate.synthesis.strategies",
    "STATE_JSON": "lasium.generate.models.checkpoint",
    "class_latents": "lasium.generate.synthesis.strategies",
    "AnchorPool": "lasium.generate.synthesis.anchor_pool",
    "encode_pool": "lasium.generate.synthesis.anchor_pool",
    "SynthesisSpec": "lasium.generate.synthesis.synthesizer",
    "TaskSynthesizer": "lasium.generate.synthesis.synthesizer",
    "TASK_SOURCES": "lasium.generate.sources.registry",
    "register_source": "lasium.generate.sources.registry",
    "SourceKind": "lasium.generate.sources.base",
    "SourceOptions": "lasium.generate.sources.base",
    "TaskSource": "lasium.generate.sources.base",
    "GeneratorOptions": "lasium.generate.sources.generator",
    "RealOptions": "lasium.generate.sources.real",
    "UmtraOptions": "lasium.generate.sources.umtra",
    "CactusOptions": "lasium.generate.sources.cactus",
    "GenerationConfig": "lasium.generate.job.config",
    "GenerationJob": "lasium.generate.job.job",
    "GenerationResult": "lasium.generate.job.job",
    "run_generation": "lasium.generate.job.job",
    # the pieces the speed benchmarks time one by one (benchmarks/bench_gen.py, gen_measures.py)
    "GANGenerator": "lasium.generate.models.gan",
    "gan_architecture": "lasium.generate.models.gan",
    "default_epsilon": "lasium.generate.synthesis.anchors",
    "min_pairwise_sq_distance": "lasium.generate.synthesis.anchors",
    "HostStager": "lasium.generate.synthesis.staging",
    "to_uint8_nhwc": "lasium.generate.synthesis.synthesizer",
    # the output folder's lock, timed against the filelock package (benchmarks/bench_tar_gzip.py)
    "folder_lock": "lasium.generate.job.outdir",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from lasium.generate.job.config import GenerationConfig
    from lasium.generate.job.job import GenerationJob, GenerationResult, run_generation
    from lasium.generate.job.outdir import folder_lock
    from lasium.generate.models.architecture import ARCHITECTURES, architectures, choose_architecture
    from lasium.generate.models.bundled_registry import BUNDLED_NAMES, bundled_folder, export_bundled
    from lasium.generate.models.checkpoint import STATE_JSON, load_checkpoint
    from lasium.generate.models.export import export_generator
    from lasium.generate.models.fit import build_trainer, fit
    from lasium.generate.models.fit_config import FitConfig
    from lasium.generate.models.gan import GANGenerator, GANTrainer, gan_architecture
    from lasium.generate.models.interface import Generator, ModuleGenerator, VAEGenerator
    from lasium.generate.models.loading import generator_from_checkpoint, load_generator
    from lasium.generate.models.quality import sample_quality
    from lasium.generate.models.resize import resize_generator
    from lasium.generate.models.vae import VAETrainer
    from lasium.generate.sources.base import SourceKind, SourceOptions, TaskSource
    from lasium.generate.sources.cactus import CactusOptions
    from lasium.generate.sources.generator import GeneratorOptions
    from lasium.generate.sources.real import RealOptions
    from lasium.generate.sources.registry import TASK_SOURCES, register_source
    from lasium.generate.sources.umtra import UmtraOptions
    from lasium.generate.synthesis.anchor_pool import AnchorPool, encode_pool
    from lasium.generate.synthesis.anchors import default_epsilon, min_pairwise_sq_distance
    from lasium.generate.synthesis.presets import REFERENCE_PARAMETERS, STRATEGY_PARAMETERS
    from lasium.generate.synthesis.staging import HostStager
    from lasium.generate.synthesis.strategies import STRATEGIES, class_latents, default_parameter
    from lasium.generate.synthesis.synthesizer import SynthesisSpec, TaskSynthesizer, to_uint8_nhwc
