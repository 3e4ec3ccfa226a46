"""In-class latents: the three LASIUM sampling strategies (Khodadadeh et al., ICLR 2021, Sec. 3.2).

Given anchors (T, N, D), one per class of T tasks, each strategy returns (T, N, M, D): M more latents
per class, which decode to further images of that class. The anchor itself stays member 0 of its
class (see :func:`class_latents`).

- ``n``  (LASIUM-N):  z' = z_i + e,            e ~ N(0, σ² I)
- ``ro`` (LASIUM-RO): z' = z_i + α (v − z_i),  v a fresh prior sample per member
- ``oc`` (LASIUM-OC): z' = z_i + α (z_j − z_i), z_j another anchor of the same task, j ≠ i uniform per
  member. With N = 2 this is degenerate: every member moves toward the single other anchor.

Every function works on whole batches of tasks; there is no per-task Python loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lasium.errors import ConfigError
from lasium.generate.synthesis.presets import STRATEGY_PARAMETERS
from lasium.shards.format import LASIUM_STRATEGIES

PriorSampler = Callable[[int, torch.Generator], torch.Tensor]
# (anchors (T, N, D), members M, σ or α, rng, the generator's prior sampler) → (T, N, M, D)
MemberSampler = Callable[[torch.Tensor, int, float, torch.Generator, PriorSampler], torch.Tensor]


def gaussian_members(anchors: torch.Tensor, members: int, sigma: float, rng: torch.Generator) -> torch.Tensor:
    """LASIUM-N: anchor plus isotropic Gaussian noise of standard deviation ``sigma``."""
    t, n, d = anchors.shape
    e = torch.randn((t, n, members, d), generator=rng, device=anchors.device, dtype=anchors.dtype)
    return anchors.unsqueeze(2) + sigma * e


def random_out_of_class_members(
    anchors: torch.Tensor, members: int, alpha: float, rng: torch.Generator, sample_prior: PriorSampler
) -> torch.Tensor:
    """LASIUM-RO: move a fraction ``alpha`` from the anchor toward a fresh prior sample per member."""
    t, n, d = anchors.shape
    v = sample_prior(t * n * members, rng).reshape(t, n, members, d).to(anchors.dtype)
    z = anchors.unsqueeze(2)
    return z + alpha * (v - z)


def other_class_targets(ways: int, shape: tuple[int, ...], rng: torch.Generator, device: torch.device) -> torch.Tensor:
    """For each class i (axis 1 of ``shape`` = (T, N, M)), a uniform index j ≠ i: i + 1 + r (mod N)
    with r uniform in [0, N − 2]."""
    r = torch.randint(ways - 1, shape, generator=rng, device=device)
    i = torch.arange(ways, device=device).view(1, ways, 1)
    return (i + 1 + r) % ways


def other_class_members(anchors: torch.Tensor, members: int, alpha: float, rng: torch.Generator) -> torch.Tensor:
    """LASIUM-OC: move a fraction ``alpha`` from the anchor toward another anchor of the same task."""
    t, n, d = anchors.shape
    if n < 2:
        raise ConfigError("LASIUM-OC needs at least 2 classes per task; use --ways 2 or more")
    j = other_class_targets(n, (t, n, members), rng, anchors.device)  # (T, N, M)
    target = torch.gather(anchors, 1, j.reshape(t, n * members, 1).expand(t, n * members, d)).reshape(t, n, members, d)
    z = anchors.unsqueeze(2)
    return z + alpha * (target - z)


@dataclass(frozen=True)
class Strategy:
    """One LASIUM sampling strategy: how it makes in-class latents and the name of its one parameter."""

    members: MemberSampler
    parameter: str  # "sigma" (a standard deviation) or "alpha" (an interpolation fraction)
    description: str


# The one table of strategies: the job, its config and the synthesizer all look strategies up here.
# Descriptions: lasium.shards.format.LASIUM_STRATEGIES, their one home (a set's card reads them without this module).
STRATEGIES: dict[str, Strategy] = {
    "n": Strategy(lambda a, m, v, rng, prior: gaussian_members(a, m, v, rng), "sigma", LASIUM_STRATEGIES["n"]),
    "ro": Strategy(random_out_of_class_members, "alpha", LASIUM_STRATEGIES["ro"]),
    "oc": Strategy(lambda a, m, v, rng, prior: other_class_members(a, m, v, rng), "alpha", LASIUM_STRATEGIES["oc"]),
}


def check_strategy(strategy: str) -> Strategy:
    """The registered strategy called ``strategy``; a one-line ConfigError for any other name."""
    if strategy not in STRATEGIES:
        named = ", ".join(f"{name} ({s.description})" for name, s in STRATEGIES.items())
        raise ConfigError(f"unknown strategy {strategy!r}; use one of: {named}")
    return STRATEGIES[strategy]


def parameter_name(strategy: str) -> str:
    """``sigma`` for ``n``, ``alpha`` for ``ro``/``oc``."""
    return check_strategy(strategy).parameter


def default_parameter(strategy: str, generator_kind: str, tuned_for: str = "maml") -> float:
    """σ for ``n``, α for ``ro``/``oc``: the value tuned for tasks meant for learner ``tuned_for``, for the generator
    kind (:data:`STRATEGY_PARAMETERS`: the reference value unless our sweeps moved it; generators that are neither
    GAN nor VAE use the GAN values)."""
    check_strategy(strategy)
    if tuned_for not in STRATEGY_PARAMETERS:
        raise ConfigError(f"unknown --tuned-for {tuned_for!r}; use one of: {', '.join(STRATEGY_PARAMETERS)}")
    return STRATEGY_PARAMETERS[tuned_for]["vae" if generator_kind == "vae" else "gan"][strategy]


def class_latents(
    anchors: torch.Tensor,
    strategy: str,
    parameter: float,
    members_per_class: int,
    rng: torch.Generator,
    sample_prior: PriorSampler,
) -> torch.Tensor:
    """All latents of T tasks, (T, N, members_per_class, D): anchor i is member 0 of class i and the
    other ``members_per_class − 1`` come from ``strategy`` with σ or α = ``parameter``."""
    chosen = check_strategy(strategy)
    extra = members_per_class - 1
    if extra < 0:
        raise ConfigError("each class needs at least one image")
    others = chosen.members(anchors, extra, parameter, rng, sample_prior)
    return torch.cat([anchors.unsqueeze(2), others], dim=2)
