"""Sample quality of a generator: Fréchet distance between real and generated images in the feature
space of a small classifier (the FID recipe of Heusel et al., "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", NeurIPS 2017, with a domain-specific feature extractor in
place of Inception, which is meaningless on 28×28 handwritten characters).

The feature extractor is a conv4 network (the few-shot learner's backbone: 4 × [conv 64 3×3, batch norm,
ReLU, max-pool 2]) trained a few epochs to classify the labeled **train** split (e.g. Omniglot's 1200
training characters); its 64-d penultimate features (global average pool of the last block) are used.
Labels serve this diagnostic only, never the unsupervised pipeline. The trained weights are cached in
``$LASIUM_CACHE/quality/`` as safetensors keyed by the train split's fingerprint, the seed and the
epochs.

Two figures are reported: generated vs real test split, and the floor, real train split vs real test
split (different characters, so not 0). Both sides use the same number of images, since the Fréchet
distance estimate is biased by sample size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lasium.errors import CheckpointError, ConfigError
from lasium.seeding import derive_seed, numpy_rng, torch_generator

from .interface import Generator

CLASSIFIER_VERSION = "conv4-gap-v1"


class FeatureClassifier(nn.Module):
    """conv4 backbone + linear head; :meth:`features` gives the 64-d penultimate features."""

    def __init__(self, channels: int, num_classes: int, width: int = 64):
        super().__init__()
        blocks = []
        for i in range(4):
            blocks += [
                nn.Conv2d(channels if i == 0 else width, width, 3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.backbone = nn.Sequential(*blocks)
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of (n, d) features, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors (n, d), got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½) between two Gaussians.

    Tr((Σ1 Σ2)^½) equals Tr((Σ1^½ Σ2 Σ1^½)^½), a symmetric PSD matrix, so it is computed with two
    symmetric eigendecompositions (stable, no scipy, no complex round-off).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    root1 = _sqrt_psd(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt, 0.0))


def _to_batch(images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (n, H, W, C) or float (n, C, H, W) in [0, 1] → float (n, C, H, W) on ``device``."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    images = images.to(device)
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def train_feature_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[FeatureClassifier, float]:
    """Train the conv4 classifier on uint8 (n, H, W, C) images; returns (model in eval mode, last-epoch accuracy)."""
    device = torch.device(device)
    labels_t = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=device)
    num_classes = int(labels_t.max().item()) + 1
    pixels = torch.from_numpy(np.ascontiguousarray(np.asarray(images).transpose(0, 3, 1, 2))).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "quality", "init"))
        model = FeatureClassifier(pixels.shape[1], num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = pixels.shape[0]
    steps = max(1, n // batch_size)
    accuracy = 0.0
    model.train()
    for epoch in tqdm(range(epochs), desc="feature classifier", disable=not progress, unit="epoch"):
        perm = torch.randperm(n, generator=torch_generator(seed, "quality", "permutation", epoch)).to(device)
        correct = torch.zeros((), device=device)
        for b in range(steps):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(pixels[idx].float() / 255.0)
            loss = F.cross_entropy(logits.float(), labels_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += (logits.argmax(1) == labels_t[idx]).sum()
        accuracy = float(correct.item()) / (steps * min(batch_size, n))
    return model.eval(), accuracy


@torch.no_grad()
def extract_features(model: FeatureClassifier, images: np.ndarray | torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """(n, 64) penultimate features (eval mode, float32)."""
    device = next(model.parameters()).device
    model.eval()
    out = [
        model.features(_to_batch(images[i : i + batch_size], device)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out).numpy()


def cached_feature_classifier(
    dataset: str,
    *,
    seed: int = 0,
    epochs: int = 5,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    cache_dir: str | Path | None = None,
    image_size: int | None = None,
    progress: bool = True,
) -> tuple[FeatureClassifier, dict[str, Any]]:
    """The classifier for ``dataset``'s labeled train split, from ``<cache_dir>/quality/`` or trained now and
    cached there (``cache_dir`` defaults to ``$LASIUM_CACHE``, see :func:`lasium.data.paths.cache_dir`)."""
    from lasium.data import load_split
    from lasium.data.paths import cache_dir as default_cache_dir
    from lasium.safe_io import read_safetensors, write_safetensors_atomic

    train = load_split(dataset, "train", data_root=data_root, cache_dir=cache_dir, image_size=image_size)
    folder = default_cache_dir(cache_dir) / "quality"
    path = folder / f"{CLASSIFIER_VERSION}-{train.fingerprint[:16]}-seed{seed}-epochs{epochs}.safetensors"
    num_classes = int(np.max(train.labels)) + 1
    model = FeatureClassifier(train.images.shape[-1], num_classes)
    info = {
        "version": CLASSIFIER_VERSION,
        "epochs": epochs,
        "seed": seed,
        "train_fingerprint": train.fingerprint,
        "cache": str(path),
    }
    if path.is_file():
        try:
            state, meta = read_safetensors(path)
            model.load_state_dict(state)
            info.update(train_accuracy=float(meta.get("train_accuracy", "nan")), cached=True)
            return model.to(device).eval(), info
        except (CheckpointError, RuntimeError):
            pass  # a corrupt or stale cache entry is simply retrained and overwritten
    model, accuracy = train_feature_classifier(
        train.images, train.labels, epochs=epochs, seed=seed, device=device, progress=progress
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors_atomic(
        path, model.state_dict(), {"train_accuracy": f"{accuracy:.6f}", "train_fingerprint": train.fingerprint}
    )
    info.update(train_accuracy=accuracy, cached=False)
    return model, info


@torch.no_grad()
def generate_images(generator: Generator, n: int, *, seed: int = 0, batch_size: int = 1024) -> np.ndarray:
    """n images from ``generator`` (a :class:`~lasium.generate.models.interface.Generator`), uint8 (n, H, W, C),
    quantised like real data and shards are."""
    g = torch_generator(seed, "quality", "latents", device=generator.device)
    out = []
    for start in range(0, n, batch_size):
        x = generator.decode(generator.sample_prior(min(batch_size, n - start), g)).float()
        out.append((x.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


@dataclass
class QualityReport:
    """Fréchet distances (lower is better) and how they were measured."""

    fd_generated_vs_test: float
    fd_train_vs_test: float
    num_samples: int
    feature_extractor: str
    dataset: str
    classifier: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sample_quality(
    generator: Generator,
    dataset: str,
    *,
    num_samples: int | None = None,
    seed: int = 0,
    classifier_epochs: int = 5,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    cache_dir: str | Path | None = None,
    image_size: int | None = None,
    progress: bool = True,
) -> QualityReport:
    """Fréchet distance of ``generator`` against ``dataset``'s test split, and the train-vs-test floor."""
    from lasium.data import load_split

    test = load_split(dataset, "test", data_root=data_root, cache_dir=cache_dir, image_size=image_size)
    image_shape = tuple(int(v) for v in test.images.shape[1:])
    if tuple(generator.image_shape) != image_shape:
        raise ConfigError(f"the generator makes {tuple(generator.image_shape)} images but {dataset} has {image_shape}")
    classifier, info = cached_feature_classifier(
        dataset,
        seed=seed,
        epochs=classifier_epochs,
        device=device,
        data_root=data_root,
        cache_dir=cache_dir,
        image_size=image_size,
        progress=progress,
    )
    train = load_split(dataset, "train", data_root=data_root, cache_dir=cache_dir, image_size=image_size)
    n = min(int(num_samples or len(test.images)), len(test.images), len(train.images))
    test_images = test.images[
        np.sort(numpy_rng(seed, "quality", "test-subset").choice(len(test.images), n, replace=False))
    ]
    train_images = train.images[
        np.sort(numpy_rng(seed, "quality", "train-subset").choice(len(train.images), n, replace=False))
    ]
    test_stats = feature_statistics(extract_features(classifier, test_images))
    fd_train = frechet_distance(*feature_statistics(extract_features(classifier, train_images)), *test_stats)
    fd_gen = frechet_distance(
        *feature_statistics(extract_features(classifier, generate_images(generator, n, seed=seed))), *test_stats
    )
    return QualityReport(
        fd_generated_vs_test=fd_gen,
        fd_train_vs_test=fd_train,
        num_samples=n,
        feature_extractor=(
            f"{CLASSIFIER_VERSION} classifier over the {int(np.max(train.labels)) + 1} train classes, 64-d features"
        ),
        dataset=dataset,
        classifier=info,
        generator=generator.describe(),
    )
