"""The sample-quality diagnostic: Fréchet distance maths, the cached feature classifier, bench_fid."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from lasium.generate import load_generator
from lasium.generate.models.fit import fit
from lasium.generate.models.fit_config import FitConfig
from lasium.generate.models.quality import (
    extract_features,
    feature_statistics,
    frechet_distance,
    sample_quality,
    train_feature_classifier,
)

REPO = Path(__file__).resolve().parent.parent


def test_frechet_distance_analytic_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    mu = rng.normal(size=5)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, -2.0, 0.0, 0.5, 3.0])
    assert frechet_distance(mu, cov, mu + shift, cov) == pytest.approx(shift @ shift, rel=1e-7)
    d1, d2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 16.0])
    expected = float(((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum())
    assert frechet_distance(np.zeros(3), np.diag(d1), np.zeros(3), np.diag(d2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(400, 16)), rng.normal(0.3, 1.5, size=(300, 16)) @ rng.normal(size=(16, 16))
    (m1, c1), (m2, c2) = feature_statistics(f1), feature_statistics(f2)
    root = linalg.sqrtm(c1 @ c2).real
    reference = float((m1 - m2) @ (m1 - m2) + np.trace(c1 + c2 - 2 * root))
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(reference, rel=1e-6)


def test_feature_classifier_is_deterministic_and_gives_64d_features():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 16)
    images = (rng.random((64, 16, 16, 1)) * 60).astype(np.uint8)
    images[np.arange(64), labels * 4, :, 0] = 255  # class = position of a bright row
    m1, acc = train_feature_classifier(images, labels, epochs=2, batch_size=16, seed=3, progress=False)
    m2, _ = train_feature_classifier(images, labels, epochs=2, batch_size=16, seed=3, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert 0.0 <= acc <= 1.0
    feats = extract_features(m1, images)
    assert feats.shape == (64, 64) and np.isfinite(feats).all()


def _imagefolder(root: Path, size: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for split, classes in (("train", range(5)), ("val", [50]), ("test", [60, 61, 62])):
        for c in classes:
            folder = root / split / f"c{c:02d}"
            folder.mkdir(parents=True)
            for i in range(12):
                pixels = (rng.random((size, size)) * 40).astype(np.uint8)
                pixels[(c * 3) % size, :] = 255
                Image.fromarray(pixels, mode="L").save(folder / f"{i}.png")
    return root


def test_sample_quality_and_bench_fid(tmp_path, monkeypatch):
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    dataset = f"imagefolder:{_imagefolder(tmp_path / 'pics')}"
    from lasium.data import load_unlabeled

    ckpt = tmp_path / "vae"
    fit(
        FitConfig(model="vae", dataset=dataset, epochs=1, batch_size=20, device="cpu", image_size=16),
        ckpt,
        data=load_unlabeled(dataset, image_size=16, progress=False),
        progress=False,
    )
    g = load_generator(ckpt)
    report = sample_quality(g, dataset, seed=0, classifier_epochs=1, image_size=16, progress=False)
    assert report.num_samples == 36  # the whole test split: 3 classes × 12
    assert report.fd_generated_vs_test > 0 and report.fd_train_vs_test >= 0
    assert report.classifier["cached"] is False and Path(report.classifier["cache"]).is_file()
    again = sample_quality(g, dataset, seed=0, classifier_epochs=1, image_size=16, progress=False)
    assert again.classifier["cached"] is True
    assert again.fd_generated_vs_test == pytest.approx(report.fd_generated_vs_test)
    assert again.fd_train_vs_test == pytest.approx(report.fd_train_vs_test)

    spec = importlib.util.spec_from_file_location("bench_fid", REPO / "benchmarks" / "bench_fid.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "fid.json"
    r = CliRunner().invoke(
        bench.main,
        [
            "--generator",
            str(ckpt),
            "--dataset",
            dataset,
            "--image-size",
            "16",
            "--classifier-epochs",
            "1",
            "--device",
            "cpu",
            "--json-out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "generated vs real test split" in r.stdout and "floor" in r.stdout
    result = json.loads(out.read_text())
    assert result["fd_generated_vs_test"] == pytest.approx(report.fd_generated_vs_test)
    assert result["generator"]["kind"] == "vae" and result["spec"] == str(ckpt)


@pytest.mark.slow
@pytest.mark.omniglot
def test_omniglot_quality_floor_is_below_a_noise_generator(omniglot_root):
    """A generator of uniform noise is far from Omniglot; the real train split is close to the test split."""
    noise = SimpleNamespace(
        kind="external",
        latent_dim=28 * 28,
        image_shape=(28, 28, 1),
        device=torch.device("cpu"),
        sample_prior=lambda n, rng: torch.rand(n, 28 * 28, generator=rng),
        decode=lambda z: z.view(-1, 1, 28, 28),
        describe=lambda: {"kind": "external", "name": "noise"},
    )
    report = sample_quality(
        noise, "omniglot", data_root=str(omniglot_root), num_samples=2000, classifier_epochs=1, progress=False
    )
    assert report.fd_train_vs_test < report.fd_generated_vs_test
