"""Class anchors for LASIUM tasks: N latents that lie pairwise far apart.

LASIUM (Khodadadeh et al., "Unsupervised Meta-Learning through Latent-Space Interpolation in Generative
Models", ICLR 2021, Sec. 3) makes the N classes of a task from N anchor latents whose pairwise squared
L2 distances all exceed a threshold ε, so that their decoded images look like different classes.

- GAN anchors: tuples drawn from the prior, kept only when every pair is farther than ε.
- VAE anchors: tuples of distinct real training images, encoded to their posterior means, same test.

The reference code draws one tuple at a time in a Python loop until one passes; with latent 128 and
ε = 246.09375 about 4% of prior 5-tuples pass (measured: 4.2% on an H200, 3.9% of 200k on CPU; the 0.8% often
quoted treats the 10 pairwise distances as independent, 0.607¹⁰), so that loop dominates its run time. Here rejection is
exact but batched: candidates are drawn ``chunk`` tuples at a time on the device, all pairwise
distances of a chunk are computed as one (B, P, D) tensor, and the accepted tuples are taken in order.
Because candidates are consumed in fixed-size chunks from one RNG, the accepted anchors depend only
on that RNG's seed and the chunk size, never on how many tasks are wanted elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lasium.errors import ConfigError
from lasium.generate.synthesis.sizes import ANCHOR_CHUNK

REFERENCE_EPSILON = 246.09375
"""ε of the reference implementation (MetaLearning-TF2.0) for the Omniglot GAN with latent size 128."""
REFERENCE_LATENT_DIM = 128

STALL_CHECK_CANDIDATES = 131072
"""After this many candidate 5-tuples the measured acceptance rate is checked (see ``MIN_ACCEPTANCE``); tuples
with more pairs are checked sooner (:func:`stall_check_candidates`), so a large N cannot spin for hours first."""
STALL_CHECK_PAIRS = STALL_CHECK_CANDIDATES * 10
"""The work before the acceptance check, in pairwise distances (131072 tuples of 10 pairs)."""
PAIR_BLOCK_BYTES = 256 * 2**20
"""Pairwise differences of a chunk are computed in blocks of at most this many bytes (one tuple at least);
the default 5-way chunk (42 MB) is one block."""
MIN_ACCEPTANCE = 1e-4
"""Below this acceptance rate anchor sampling is declared stalled and stops with a suggested ε."""
SUGGESTED_ACCEPTANCE = 0.01


def default_epsilon(latent_dim: int) -> float:
    """The reference ε scaled linearly with the latent size: E‖z_i − z_j‖² = 2·D for prior samples,
    so ε/E‖z_i − z_j‖² stays at the reference ratio 246.09375 / 256."""
    return REFERENCE_EPSILON * float(latent_dim) / REFERENCE_LATENT_DIM


def min_pairwise_sq_distance(z: torch.Tensor) -> torch.Tensor:
    """Smallest squared L2 distance over all pairs i < j of each tuple: (B, N, D) → (B,).

    Computed from explicit differences (not the Gram-matrix shortcut) so the ε test is exact in the
    working precision, with no cancellation near the threshold.
    """
    n = z.shape[1]
    if n < 2:
        raise ConfigError(f"a task needs at least 2 classes, got ways={n}; use --ways 2 or more")
    i, j = torch.triu_indices(n, n, 1, device=z.device)
    rows = pair_block_rows(n, z.shape[2])
    if z.shape[0] <= rows:
        d = (z[:, i] - z[:, j]).float().square().sum(-1)  # (B, P)
        return d.amin(dim=1)
    # Many classes: the (B, P, D) differences would not fit; the same values, a block of tuples at a time.
    return torch.cat([(b[:, i] - b[:, j]).float().square().sum(-1).amin(dim=1) for b in z.split(rows)])


def num_pairs(ways: int) -> int:
    return ways * (ways - 1) // 2


def pair_block_rows(ways: int, latent_dim: int) -> int:
    """Tuples whose pairwise differences are computed in one block (at most ``PAIR_BLOCK_BYTES``, at least 1)."""
    return max(1, PAIR_BLOCK_BYTES // max(1, num_pairs(ways) * latent_dim * 4))


def anchor_chunk_bytes(chunk: int, ways: int, latent_dim: int) -> int:
    """Peak memory of one chunk of anchor rejection: the candidate latents plus one block of pairwise differences."""
    rows = min(chunk, pair_block_rows(ways, latent_dim))
    return 4 * chunk * ways * latent_dim + 4 * rows * num_pairs(ways) * latent_dim * 2


def stall_check_candidates(ways: int) -> int:
    """Candidate tuples drawn before the acceptance check: ``STALL_CHECK_CANDIDATES`` up to 5-way, fewer for
    larger N (the same number of pairwise distances), so e.g. 60-way tuples are checked after one chunk."""
    return max(1, STALL_CHECK_PAIRS // max(10, num_pairs(ways)))


@dataclass
class AnchorStats:
    """How much of the candidate stream an anchor draw used."""

    candidates: int = 0
    accepted: int = 0

    @property
    def rate(self) -> float:
        return self.accepted / self.candidates if self.candidates else 0.0


class AnchorStallError(ConfigError):
    """ε is so large that almost no candidate tuple passes; the message suggests a workable ε."""


def _stall_error(
    epsilon: float, stats: AnchorStats, min_dists: list[torch.Tensor], latent_dim: int
) -> AnchorStallError:
    dists = torch.cat(min_dists).float().cpu()
    # The ε that about SUGGESTED_ACCEPTANCE of the measured tuples pass: the matching upper quantile of
    # the tuples' smallest pairwise distance.
    suggestion = float(torch.quantile(dists[:1_000_000], 1.0 - SUGGESTED_ACCEPTANCE))
    return AnchorStallError(
        f"anchor sampling stalls: epsilon {epsilon:g} accepts {stats.rate:.4%} of candidate tuples "
        f"({stats.accepted} of {stats.candidates}); use --epsilon {suggestion:.4g} or less "
        f"(about {SUGGESTED_ACCEPTANCE:.0%} acceptance, measured) — the default for latent size {latent_dim} is "
        f"{default_epsilon(latent_dim):g}"
    )


def _take_accepted(
    draw_chunk: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    num_tasks: int,
    epsilon: float,
    chunk: int,
    latent_dim: int,
    stall_check: int,
    min_acceptance: float,
) -> tuple[list[torch.Tensor], AnchorStats]:
    """Draw chunks until ``num_tasks`` tuples passed the ε test; returns the per-chunk payloads kept."""
    stats = AnchorStats()
    kept: list[torch.Tensor] = []
    seen_min: list[torch.Tensor] = []
    checked = False
    while stats.accepted < num_tasks:
        payload, min_d = draw_chunk(chunk)
        ok = min_d > epsilon
        # One host sync per chunk: the number of accepted tuples decides whether to draw another.
        idx = ok.nonzero().squeeze(1)
        take = min(int(idx.numel()), num_tasks - stats.accepted)
        if take:
            kept.append(payload[idx[:take]])
        stats.candidates += chunk
        stats.accepted += take
        if not checked:
            seen_min.append(min_d)
            if stats.candidates >= stall_check:
                checked = True
                # Count every accepted candidate seen so far, not only those taken, so the check does
                # not depend on how many tasks were asked for.
                passing = sum(int((m > epsilon).sum()) for m in seen_min)
                if passing / stats.candidates < min_acceptance:
                    raise _stall_error(epsilon, AnchorStats(stats.candidates, passing), seen_min, latent_dim)
                seen_min = []
    return kept, stats


def sample_gan_anchors(
    sample_prior: Callable[[int, torch.Generator], torch.Tensor],
    num_tasks: int,
    ways: int,
    latent_dim: int,
    epsilon: float,
    rng: torch.Generator,
    *,
    chunk: int = ANCHOR_CHUNK,
    stall_check: int | None = None,
    min_acceptance: float = MIN_ACCEPTANCE,
) -> tuple[torch.Tensor, AnchorStats]:
    """``num_tasks`` anchor tuples (T, N, D) from the prior, each pairwise farther apart than ``epsilon``.

    ``sample_prior(n, rng)`` returns (n, D) latents on the device; candidates are drawn ``chunk``
    tuples per call and accepted in stream order (exact rejection, batched). Raises
    :class:`AnchorStallError` when, after ``stall_check`` candidates (default :func:`stall_check_candidates`),
    fewer than ``min_acceptance`` pass.
    """
    if ways < 2:
        raise ConfigError(f"a task needs at least 2 classes, got ways={ways}; use --ways 2 or more")
    stall_check = stall_check_candidates(ways) if stall_check is None else stall_check

    def draw(c: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = sample_prior(c * ways, rng).reshape(c, ways, latent_dim)
        return z, min_pairwise_sq_distance(z)

    kept, stats = _take_accepted(draw, num_tasks, epsilon, chunk, latent_dim, stall_check, min_acceptance)
    if not kept:
        return torch.empty(0, ways, latent_dim), stats
    return torch.cat(kept), stats


def sample_encoded_anchors(
    codes: torch.Tensor,
    num_tasks: int,
    ways: int,
    epsilon: float,
    rng: torch.Generator,
    *,
    chunk: int = ANCHOR_CHUNK,
    stall_check: int | None = None,
    min_acceptance: float = MIN_ACCEPTANCE,
) -> tuple[torch.Tensor, torch.Tensor, AnchorStats]:
    """VAE anchors: tuples of ``ways`` distinct rows of ``codes`` (M, D) (the posterior means of real
    images), pairwise farther apart than ``epsilon``.

    Returns (anchors (T, N, D), image indices (T, N) into ``codes``, stats). Candidate index tuples are
    drawn uniformly with replacement and tuples that repeat an image are rejected, which is the same
    as drawing distinct images uniformly.
    """
    if ways < 2:
        raise ConfigError(f"a task needs at least 2 classes, got ways={ways}; use --ways 2 or more")
    stall_check = stall_check_candidates(ways) if stall_check is None else stall_check
    m, d = codes.shape
    if m < ways:
        raise ConfigError(f"{ways}-way VAE anchors need at least {ways} real images, the dataset has {m}")
    i, j = torch.triu_indices(ways, ways, 1, device=codes.device)

    def draw(c: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(m, (c, ways), generator=rng, device=codes.device)
        min_d = min_pairwise_sq_distance(codes[idx])
        distinct = (idx[:, i] != idx[:, j]).all(dim=1)
        # A repeated image fails the test whatever ε is (distance -1 < any ε ≥ 0).
        return idx, torch.where(distinct, min_d, torch.full_like(min_d, -1.0))

    kept, stats = _take_accepted(draw, num_tasks, epsilon, chunk, d, stall_check, min_acceptance)
    index = torch.cat(kept) if kept else torch.empty(0, ways, dtype=torch.long, device=codes.device)
    return codes[index], index, stats
