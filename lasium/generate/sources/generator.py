"""LASIUM: tasks synthesized from a generative model's latent space (``lasium-gen --source generator``).

Khodadadeh et al., "Unsupervised Meta-Learning through Latent-Space Interpolation in Generative Models", ICLR 2021.
Anchors (one latent per class, pairwise farther apart than ε) are drawn on the device by batched rejection; each
class gets K_tr + K_val − 1 more latents by the chosen strategy
(:data:`lasium.generate.synthesis.strategies.STRATEGIES`: ``n`` with σ, ``ro``/``oc`` with α); all are decoded.
A VAE draws its anchors from encoded real images (member 0 of each class is then the real image).

Opening the source runs the named steps that change what the shards hold or how fast they come:
:func:`load_model`, :func:`encode_anchor_pool`, :func:`lasium.generate.models.loading.prepare_network`
(channels-last, the one ``torch.compile``) and :func:`synthesis_spec` → :class:`TaskSynthesizer`. Shards leave
the device through pinned host buffers (:mod:`lasium.generate.synthesis.staging`), so the device goes on with
the next shard while the writers take the last one.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lasium.errors import ConfigError
from lasium.generate.sources.base import (
    DATASET,
    ShardPlan,
    SourceContext,
    SourceKind,
    SourceOptions,
    TaskShape,
    cli_option,
    dataset_label,
    safe_set_name,
)
from lasium.generate.synthesis.presets import STRATEGY_PARAMETERS
from lasium.generate.synthesis.sizes import ANCHOR_CHUNK, DECODE_TASKS
from lasium.precision import PRECISIONS
from lasium.shards.format import GENERATOR_SOURCE, LASIUM_STRATEGIES
from lasium.tasks import TaskBatch

if TYPE_CHECKING:  # torch and the synthesizer load when the source opens: lasium-gen --help reads the options only
    import torch

    from lasium.generate.models.interface import Generator
    from lasium.generate.synthesis.anchor_pool import AnchorPool
    from lasium.generate.synthesis.staging import HostStager, StagedShard
    from lasium.generate.synthesis.synthesizer import SynthesisSpec

_STRATEGY_HELP = ", ".join(f"{name} ({description})" for name, description in LASIUM_STRATEGIES.items())


@dataclass
class GeneratorOptions(SourceOptions):
    """The options of LASIUM synthesis. ``None`` means the default for the generator and ``tuned_for``."""

    strategy: str | None = field(
        default=None,
        metadata=cli_option(f"LASIUM sampling strategy: {_STRATEGY_HELP}.", metavar="|".join(LASIUM_STRATEGIES)),
    )
    generator: str = field(
        default="omniglot-gan",
        metadata=cli_option(
            "Bundled name (omniglot-gan, omniglot-gan-h200, omniglot-vae), lasium-fit checkpoint folder, TorchScript "
            "file or package.module:factory."
        ),
    )
    latent_dim: int | None = field(
        default=None, metadata=cli_option("Latent size of an external generator (TorchScript / factory).", type=int)
    )
    output_range: str | None = field(
        default=None,
        metadata=cli_option(
            'Value range of an external generator\'s images: "[-1,1]" for tanh outputs (mapped to [0, 1]) '
            "[default: the module's output_range attribute, else [0,1]]; checked on probe latents at load time.",
            metavar="[0,1]|[-1,1]",
        ),
    )
    image_size: int | None = field(
        default=None,
        metadata=cli_option(
            "Resize the generator's images to SIZE×SIZE on the device (bilinear, antialiased), e.g. a 128-px "
            "ProGAN to the paper's 84 [default: the generator's own size]; GAN and external generators.",
            type=int,
            metavar="SIZE",
        ),
    )
    tuned_for: str = field(
        default="maml",
        metadata=cli_option(
            "Use the sigma/alpha values tuned for tasks meant for this learner (table below). It "
            "picks strategy parameters only, never the learner: the tasks suit any learner.",
            choices=tuple(STRATEGY_PARAMETERS),
        ),
    )
    sigma: float | None = field(
        default=None, metadata=cli_option("LASIUM-N noise scale (overrides --tuned-for's value).", type=float)
    )
    alpha: float | None = field(
        default=None,
        metadata=cli_option("LASIUM-RO / -OC interpolation fraction (overrides --tuned-for's value).", type=float),
    )
    epsilon: float | None = field(
        default=None,
        metadata=cli_option("Minimum squared L2 distance between anchors (default 246.09375·D/128).", type=float),
    )
    dataset: str | None = field(default=None, metadata=DATASET)  # VAE anchors; None: omniglot
    save_latents: bool = field(
        default=False, metadata=cli_option("Also store each image's latent (float16).", is_flag=True)
    )
    compile: bool = field(
        default=False,
        metadata=cli_option("torch.compile the generator's network (faster on GPUs after a warm-up).", is_flag=True),
    )
    precision: str = field(
        default="auto",
        metadata=cli_option(
            "Decoder numerics: auto = bf16 autocast where the device computes bf16 natively (CUDA; CPUs with "
            "AVX512-BF16/AMX, ~2x faster there), else fp32; fp32 gives the same bytes on every CPU.",
            choices=PRECISIONS,
        ),
    )
    decode_tasks: int = field(
        default=DECODE_TASKS,
        metadata=cli_option(
            "Tasks per generator call (fixed shape, tail padded; part of the config since it fixes the kernels).",
            type=int,
        ),
    )
    anchor_chunk: int = ANCHOR_CHUNK  # candidate anchor tuples per rejection round (recorded: it fixes the draws)
    in_flight: int = 2  # shards synthesized ahead of the writers (speed only)

    def check(self, shape: TaskShape) -> None:
        from lasium.generate.synthesis.strategies import STRATEGIES, check_strategy

        if self.strategy is None:
            raise ConfigError(f"--strategy is required with --source generator; use one of: {_STRATEGY_HELP}")
        strategy = check_strategy(self.strategy)
        for name in ("sigma", "alpha"):
            if getattr(self, name) is not None and strategy.parameter != name:
                users = " and ".join(s for s, st in STRATEGIES.items() if st.parameter == name)
                raise ConfigError(
                    f"--{name} applies to --strategy {users}; {self.strategy} uses --{strategy.parameter}"
                )
        for name in ("sigma", "alpha", "epsilon"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"--{name} must be a finite number ≥ 0, got {value}")
        if self.alpha is not None and self.alpha > 1:
            # z' = z_i + α (v − z_i): α = 0 keeps the anchor, α = 1 reaches the other latent; beyond it leaves the
            # segment
            raise ConfigError(
                f"--alpha must be between 0 and 1 (the fraction of the way to the other latent), got {self.alpha:g}"
            )
        if self.tuned_for not in STRATEGY_PARAMETERS:
            raise ConfigError(f"unknown --tuned-for {self.tuned_for!r}; use one of: {', '.join(STRATEGY_PARAMETERS)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown --precision {self.precision!r}; use one of: {', '.join(PRECISIONS)}")
        if self.decode_tasks < 1 or self.anchor_chunk < 1 or self.in_flight < 1:
            raise ConfigError("--decode-tasks, anchor_chunk and in_flight must be positive")

    def resolved_precision(self, device_type: str) -> str:
        """``bf16-autocast`` or ``fp32``: auto means bf16 where the device computes it natively (CUDA; CPUs with
        AVX512-BF16/AMX, ~2x faster there), else fp32 (see ``lasium.precision``). bf16 bytes may differ between
        processor families; the set config records the precision and device type."""
        from lasium.precision import resolve_precision

        return "bf16-autocast" if resolve_precision(self.precision, device_type) == "bf16" else "fp32"

    def parameter(self, generator_kind: str) -> tuple[str, float]:
        """(name, value) of the strategy's parameter: σ for ``n``, α for ``ro``/``oc``."""
        from lasium.generate.synthesis.strategies import check_strategy, default_parameter

        assert self.strategy is not None
        name = check_strategy(self.strategy).parameter
        given = self.sigma if name == "sigma" else self.alpha
        if given is not None:
            return name, float(given)
        return name, default_parameter(self.strategy, generator_kind, self.tuned_for)


def generator_label(name: str) -> str:
    """A folder name for an external generator with no dataset: its name.

    ``g.pt`` → g, ``mygan:build`` → mygan-build.
    """
    return safe_set_name(re.sub(r"\.(pt|ts|jit|pth)$", "", name))


def load_model(options: GeneratorOptions, device: torch.device) -> Generator:
    from lasium.generate.models.loading import load_generator
    from lasium.generate.models.resize import resize_generator

    model = load_generator(
        options.generator, device=device, latent_dim=options.latent_dim, output_range=options.output_range
    )
    return resize_generator(model, options.image_size)


def encode_anchor_pool(
    dataset: str, model: Generator, device: torch.device, data_root: str | None
) -> tuple[AnchorPool | None, dict[str, Any] | None]:
    """VAEs draw anchors from encoded real images (the pool and the header's ``source`` record).

    GANs draw them from the prior.
    """
    if model.kind != "vae":
        return None, None
    from lasium.generate.synthesis.anchor_pool import vae_anchor_pool, vae_source_record

    pool = vae_anchor_pool(model, dataset, data_root=data_root, device=device)
    return pool, vae_source_record(pool, dataset)


def synthesis_spec(options: GeneratorOptions, context: SourceContext, set_config: dict[str, Any]) -> SynthesisSpec:
    """What defines the tasks, from the resolved set config (σ or α under the strategy's parameter name)."""
    from lasium.generate.synthesis.strategies import check_strategy
    from lasium.generate.synthesis.synthesizer import SynthesisSpec

    assert options.strategy is not None
    return SynthesisSpec(
        strategy=options.strategy,
        parameter=float(set_config[check_strategy(options.strategy).parameter]),
        epsilon=float(set_config["epsilon"]),
        ways=context.ways,
        shots=context.shots,
        queries=context.queries,
        anchor_chunk=options.anchor_chunk,
        decode_tasks=set_config["decode_tasks"],
        save_latents=options.save_latents,
    )


class GeneratorSource:
    """An opened LASIUM source: the generator, its synthesizer, and the set config they make."""

    def __init__(self, options: GeneratorOptions, context: SourceContext) -> None:
        from lasium.generate.models.loading import prepare_network
        from lasium.generate.synthesis.synthesizer import TaskSynthesizer
        from lasium.runtime import no_cudnn_autotuning

        device = context.device
        no_cudnn_autotuning(device)
        self.options, self.context = options, context
        if context.model is not None:
            from lasium.generate.models.resize import resize_generator

            self.model: Generator = resize_generator(context.model, options.image_size)
        else:
            self.model = load_model(options, device)
        if options.dataset is not None and self.model.kind != "vae":
            raise ConfigError(
                f"--dataset applies to VAE generators (it names the images their anchors encode); "
                f"{self.model.name} is a {self.model.kind}"
            )
        self.anchor_dataset = options.dataset or "omniglot"
        self._set_config = self._make_set_config()
        pool, self._describe = encode_anchor_pool(self.anchor_dataset, self.model, device, context.data_root)
        prepare_network(self.model, device, compile=options.compile)
        self.synth = TaskSynthesizer(
            self.model,
            synthesis_spec(options, context, self._set_config),
            device=device,
            anchor_pool=pool,
            autocast=self._set_config["precision"] == "bf16-autocast",
        )

    def _make_set_config(self) -> dict[str, Any]:
        from lasium.generate.synthesis.anchors import default_epsilon

        o, model, device_type = self.options, self.model, self.context.device.type
        name, value = o.parameter(model.kind)
        c: dict[str, Any] = {
            "strategy": o.strategy,
            "save_latents": bool(o.save_latents),
            name: value,
            "preset": o.tuned_for,  # the set config's historical key for --tuned-for
            "epsilon": float(o.epsilon) if o.epsilon is not None else default_epsilon(int(model.latent_dim)),
            "latent_dim": int(model.latent_dim),
            "anchors": "vae-encoded-train-images" if model.kind == "vae" else "prior",
            "anchor_chunk": o.anchor_chunk,
            # Fixed generator-call shape and numerics: these decide the bytes of every image. Never more tasks per
            # call than a shard holds, so small shards are not padded.
            "decode_tasks": min(o.decode_tasks, self.context.tasks_per_shard),
            "device_type": device_type,
            "precision": o.resolved_precision(device_type),
            "compile": bool(o.compile),
        }
        if model.kind == "vae":
            c["anchor_dataset"] = self.anchor_dataset
        return c

    @property
    def image_shape(self) -> tuple[int, int, int]:
        height, width, channels = (int(s) for s in self.model.image_shape)
        return height, width, channels

    def set_config(self) -> dict[str, Any]:
        return dict(self._set_config)

    def generator_record(self) -> dict[str, Any]:
        return self.model.describe()

    def describe(self) -> dict[str, Any] | None:
        """The VAE anchor images (None for a GAN: the generator record says everything)."""
        return self._describe

    def default_folder(self) -> tuple[str, str]:
        """``shards/<what the generator was fitted on>/<strategy>``; an external generator: its name."""
        trained_on = getattr(self.model, "training_dataset", None)
        dataset = dataset_label(trained_on) if trained_on else generator_label(str(self.model.name))
        return dataset, str(self.options.strategy)

    def make_shards(self, plans: Sequence[ShardPlan]) -> Iterator[tuple[ShardPlan, TaskBatch]]:
        """Synthesize each shard on the device and stage it to the host; up to ``in_flight`` shards are ahead of
        the one handed over, so synthesis overlaps the copies and the writers."""
        from lasium.generate.synthesis.staging import HostStager
        from lasium.seeding import torch_generator

        in_flight, device, seed = self.options.in_flight, self.context.device, self.context.seed
        stager = HostStager(device, in_flight + 1, self.context.tasks_per_shard)
        pending: deque[tuple[ShardPlan, StagedShard]] = deque()
        for plan in plans:
            shard = self.synth.shard(plan.num_tasks, torch_generator(seed, "shard", plan.index, device=device))
            pending.append((plan, stager.stage(shard)))
            del shard
            while pending and (len(pending) > in_flight or pending[0][1].ready()):
                yield from self._hand_over(pending.popleft(), stager)
        while pending:
            yield from self._hand_over(pending.popleft(), stager)

    def _hand_over(
        self, item: tuple[ShardPlan, StagedShard], stager: HostStager
    ) -> Iterator[tuple[ShardPlan, TaskBatch]]:
        plan, staged = item
        arrays = staged.arrays()
        support, query = arrays["support"], arrays["query"]
        assert support is not None and query is not None  # always staged; only latents and anchor rows are optional
        metas = self.synth.metas(plan.first_task, plan.num_tasks, arrays["anchor_index"])
        yield plan, TaskBatch(support, query, arrays["latents"], metas)
        stager.release(staged)  # the writers have taken the batch: its pinned buffers are free again


def open_generator(options: GeneratorOptions, context: SourceContext) -> GeneratorSource:
    return GeneratorSource(options, context)


SOURCE = SourceKind(
    GENERATOR_SOURCE,
    "LASIUM synthesis: tasks decoded from a generator's latent space (--strategy n|ro|oc)",
    GeneratorOptions,
    open_generator,
    takes_model=True,
)


__all__ = ["GeneratorOptions", "GeneratorSource", "SOURCE", "generator_label", "synthesis_spec"]
