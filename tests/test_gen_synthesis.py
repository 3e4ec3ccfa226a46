"""LASIUM synthesis properties: anchors, the three strategies, task layout (lasium.generate.synthesis.synthesizer)."""

from __future__ import annotations

import hashlib
import math

import gen_tiny
import numpy as np
import pytest
import torch

from lasium.errors import ConfigError
from lasium.generate.synthesis.anchor_pool import encode_pool
from lasium.generate.synthesis.anchors import (
    AnchorStallError,
    default_epsilon,
    min_pairwise_sq_distance,
    sample_encoded_anchors,
    sample_gan_anchors,
)
from lasium.generate.synthesis.presets import REFERENCE_PARAMETERS
from lasium.generate.synthesis.strategies import (
    class_latents,
    default_parameter,
    other_class_targets,
)
from lasium.generate.synthesis.synthesizer import SynthesisSpec, TaskSynthesizer
from lasium.seeding import torch_generator

D = 8


def prior(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, D, generator=g)


def synth(strategy: str, parameter: float, *, ways: int = 5, epsilon: float | None = None, **kw) -> TaskSynthesizer:
    model = gen_tiny.tiny_gan(D)
    spec = SynthesisSpec(
        strategy,
        parameter,
        default_epsilon(D) if epsilon is None else epsilon,
        ways=ways,
        decode_tasks=32,
        save_latents=True,
        **kw,
    )
    return TaskSynthesizer(model, spec)


def test_default_epsilon_scales_with_latent_size():
    assert default_epsilon(128) == 246.09375
    assert default_epsilon(64) == pytest.approx(246.09375 / 2)


def test_reference_parameters():
    assert [default_parameter(s, "gan", "maml") for s in ("n", "ro", "oc")] == [0.5, 0.2, 0.2]  # oc: MAML's sweep
    assert REFERENCE_PARAMETERS["maml"]["gan"] == {"n": 0.5, "ro": 0.2, "oc": 0.6}
    assert [default_parameter(s, "vae", "maml") for s in ("n", "ro", "oc")] == [0.5, 0.4, 0.4]
    assert [default_parameter(s, "gan", "protonets") for s in ("n", "ro", "oc")] == [0.5, 0.5, 0.2]  # the sweep's
    assert REFERENCE_PARAMETERS["protonets"]["gan"] == {"n": 1.0, "ro": 0.8, "oc": 0.2}  # the authors' values, kept
    assert [default_parameter(s, "vae", "protonets") for s in ("n", "ro", "oc")] == [2.0, 0.4, 0.2]


def test_gan_anchors_are_pairwise_beyond_epsilon_and_exact_rejection():
    eps = default_epsilon(D)
    g = torch_generator(0, "anchors")
    z, stats = sample_gan_anchors(prior, 300, 5, D, eps, g, chunk=1024)
    assert z.shape == (300, 5, D)
    assert bool((min_pairwise_sq_distance(z) > eps).all())
    # Exact rejection: replaying the same candidate stream, the accepted tuples are exactly the
    # passing candidates in order (nothing passing is dropped, nothing failing is kept).
    g2 = torch_generator(0, "anchors")
    cands = torch.cat([prior(1024 * 5, g2).reshape(1024, 5, D) for _ in range(stats.candidates // 1024)])
    passing = cands[min_pairwise_sq_distance(cands) > eps]
    assert torch.equal(passing[:300], z)


def test_anchor_draw_does_not_depend_on_how_many_tasks_are_asked():
    eps = default_epsilon(D)
    few, _ = sample_gan_anchors(prior, 10, 4, D, eps, torch_generator(3, "x"), chunk=512)
    many, _ = sample_gan_anchors(prior, 200, 4, D, eps, torch_generator(3, "x"), chunk=512)
    assert torch.equal(few, many[:10])


def test_stalled_anchor_sampling_reports_rate_and_a_workable_epsilon():
    with pytest.raises(AnchorStallError) as info:
        sample_gan_anchors(prior, 5, 5, D, 1e4, torch_generator(0, "stall"), chunk=4096, stall_check=16384)
    msg = str(info.value)
    assert "0.0000%" in msg and "--epsilon" in msg and "\n" not in msg
    suggested = float(msg.split("--epsilon ")[1].split()[0])
    z = prior(50000 * 5, torch_generator(1, "check")).reshape(50000, 5, D)
    rate = float((min_pairwise_sq_distance(z) > suggested).float().mean())
    assert 0.005 < rate < 0.02  # "about 1%" acceptance, measured on a fresh stream


def test_n_offsets_have_requested_sigma():
    sigma = 0.7
    batch = synth("n", sigma).batch(200, torch_generator(0, "n"))
    lat = batch.latents.astype(np.float64)  # (T, N, K, D) float16 → offsets carry ~1e-3 rounding
    offsets = (lat[:, :, 1:] - lat[:, :, :1]).reshape(-1)
    n = offsets.size
    se_std = sigma / math.sqrt(2 * n)
    assert abs(offsets.std() - sigma) < 5 * se_std + 2e-3
    assert abs(offsets.mean()) < 5 * sigma / math.sqrt(n)


def _targets(lat: np.ndarray, alpha: float) -> np.ndarray:
    """Solve z' = z + α (target − z) for the target of every non-anchor member."""
    z = lat[:, :, :1]
    return z + (lat[:, :, 1:] - z) / alpha


def test_ro_members_lie_at_alpha_toward_fresh_prior_samples():
    alpha = 0.4
    batch = synth("ro", alpha).batch(200, torch_generator(0, "ro"))
    v = _targets(batch.latents.astype(np.float64), alpha).reshape(-1, D)
    # The solved targets are fresh N(0, I) samples: mean 0, variance 1, and none is an anchor.
    n = v.size
    assert abs(v.mean()) < 5 / math.sqrt(n) + 0.01
    assert abs(v.std() - 1.0) < 5 / math.sqrt(2 * n) + 0.01
    anchors = batch.latents[:, :, 0].reshape(-1, D).astype(np.float64)
    nearest = np.min(((v[:500, None] - anchors[None]) ** 2).sum(-1), axis=1)
    assert nearest.min() > 0.05


@pytest.mark.parametrize("ways", [5, 2])
def test_oc_members_lie_at_alpha_toward_another_anchor_of_the_task(ways):
    alpha = 0.6
    s = synth("oc", alpha, ways=ways)
    # Exact check on float32 latents from the strategy itself.
    g = torch_generator(0, "oc", ways)
    anchors, _, _ = s.anchors(100, g)
    lat = class_latents(anchors, "oc", alpha, 6, g, s.model.sample_prior).double().numpy()
    target = _targets(lat, alpha)  # (T, N, M, D)
    a = lat[:, :, 0]  # (T, N, D)
    dist = ((target[:, :, :, None, :] - a[:, None, None, :, :]) ** 2).sum(-1)  # (T, N, M, N)
    j = dist.argmin(-1)
    assert dist.min(-1).max() < 1e-6
    i = np.arange(ways)[None, :, None]
    assert (j != i).all()  # never the member's own anchor
    if ways > 2:  # j ≠ i uniform: every other class is chosen about equally often
        counts = np.bincount(((j - i) % ways).ravel(), minlength=ways)[1:]
        assert counts.min() > 0.8 * counts.mean()
    # Same property on the float16 latents a shard stores.
    stored = s.batch(50, torch_generator(1, "oc")).latents.astype(np.float64)
    t16 = _targets(stored, alpha)
    d16 = ((t16[:, :, :, None, :] - stored[:, None, None, :, 0, :]) ** 2).sum(-1)
    assert np.sqrt(d16.min(-1)).max() < 0.05
    assert (d16.argmin(-1) != np.arange(ways)[None, :, None]).all()


def test_other_class_targets_n2_is_the_other_anchor():
    j = other_class_targets(2, (50, 2, 7), torch_generator(0, "j"), torch.device("cpu"))
    assert (j[:, 0] == 1).all() and (j[:, 1] == 0).all()


def test_classes_are_rows_support_first_query_last():
    s = synth("n", 0.5, shots=2, queries=3)
    batch = s.batch(20, torch_generator(0, "rows"))
    assert batch.support.shape == (20, 5, 2, 8, 8, 1) and batch.query.shape == (20, 5, 3, 8, 8, 1)
    assert batch.latents.shape == (20, 5, 5, D)
    lat = torch.from_numpy(batch.latents.astype(np.float32)).reshape(-1, D)
    redecoded = (s.model.decode(lat).permute(0, 2, 3, 1) * 255).round().numpy().reshape(20, 5, 5, 8, 8, 1)
    images = np.concatenate([batch.support, batch.query], axis=2).astype(np.float64)
    # Decoding the stored (float16-rounded) latents gives the stored images to within rounding;
    # any other row or member order would be far off.
    assert np.abs(images - redecoded).max() <= 3
    assert np.abs(images[:, ::-1] - redecoded).mean() > 10
    assert [m["index"] for m in batch.metas] == list(range(20))


def test_no_two_tasks_are_identical():
    batch = synth("ro", 0.2).batch(300, torch_generator(0, "unique"))
    digests = {hashlib.sha256(batch.support[t].tobytes() + batch.query[t].tobytes()).hexdigest() for t in range(300)}
    assert len(digests) == 300


def test_decode_is_fixed_shape_and_padding_does_not_change_images():
    s = synth("n", 0.5)
    calls = []
    original = s.model.decode
    s.model.decode = lambda z: calls.append(tuple(z.shape)) or original(z)
    lat = torch.randn(37 * 30, D, generator=torch_generator(0, "pad"))
    out = s.decode_uint8(lat)
    assert set(calls) == {(32 * 30, D)}  # every call has the same shape, the tail is padded
    ref = (original(lat).permute(0, 2, 3, 1) * 255).round().to(torch.uint8)
    assert torch.equal(out, ref)


def test_bad_specs_are_refused():
    with pytest.raises(ConfigError):
        synth("x", 0.5)
    with pytest.raises(ConfigError):
        synth("n", 0.5, ways=1)
    with pytest.raises(ConfigError):
        synth("n", 0.5, shots=0)


def test_vae_anchors_are_distinct_real_images_and_member_zero():
    model = gen_tiny.tiny_vae(4, (8, 8, 1))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60, 8, 8, 1), dtype=np.uint8)
    pool = encode_pool(model, images, [f"img/{i}" for i in range(60)], device=torch.device("cpu"), fingerprint="f")
    codes = pool.codes
    eps = float(torch.quantile(min_pairwise_sq_distance(codes[torch.randint(60, (4000, 5))]), 0.5))
    z, index, _ = sample_encoded_anchors(codes, 50, 5, eps, torch_generator(0, "vae"))
    assert bool((min_pairwise_sq_distance(z) > eps).all())
    assert all(len(set(row.tolist())) == 5 for row in index)
    s = TaskSynthesizer(model, SynthesisSpec("oc", 0.4, eps, decode_tasks=16, save_latents=True), anchor_pool=pool)
    batch = s.batch(40, torch_generator(0, "vae-task"))
    for t in range(40):
        ids = batch.metas[t]["anchor_source_ids"]
        assert len(set(ids)) == 5
        for i, image_id in enumerate(ids):
            assert np.array_equal(batch.support[t, i, 0], images[int(image_id.split("/")[1])])
        # member 0's latent is that image's posterior mean
        want = codes[[int(x.split("/")[1]) for x in ids]].numpy()
        assert np.allclose(batch.latents[t, :, 0].astype(np.float32), want, atol=2e-2 * (1 + np.abs(want).max()))
