"""The few-shot evaluation protocol: which real tasks every method is scored on, and how scores are summed up.

The protocols of the LASIUM paper (Khodadadeh et al., ICLR 2021), one entry per dataset in
:data:`PAPER_PROTOCOLS` (``docs/datasets.md`` gives each value's source in the papers and the authors' code):

- Omniglot, as in MAML (Finn et al., ICML 2017) and CACTUs (Hsu et al., ICLR 2019): 5-way, K_tr ∈ {1, 5},
  15 queries per class;
- CelebA identities: 5-way, K_tr ∈ {1, 5, 15}, 15 queries;
- CelebA attributes (the tasks of Hsu et al., ICLR 2019): 2-way, K_tr = 5, 5 queries;
- mini-ImageNet (Ravi & Larochelle split): 5-way, K_tr ∈ {1, 5, 20, 50}, 15 queries;

each with 1000 tasks from the test split drawn with a fixed seed; the score is the mean query accuracy over
tasks with a 95% confidence interval of 1.96·std/√n_tasks. MAML adapts on each task's support set with the
number of steps and learning rate of the authors' evaluation for that dataset.

Episodes come from :func:`lasium.data.episode_sampler` (the sampler the trainer validates with; attribute
tasks for CelebA attributes), so one (dataset, split, ways, shots, queries, seed) gives the same tasks for
every method and every run; a digest of their bytes is recorded with each result to show it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lasium.data import LabeledImages, episode_sampler
from lasium.errors import ConfigError
from lasium.seeding import numpy_rng

DEFAULT_SHOTS = (1, 5)


@dataclass(frozen=True)
class PaperProtocol:
    """How the LASIUM paper evaluates on one dataset: N ways, the K_tr values, queries per class, the number
    of test tasks, MAML's test-time adaptation (steps, learning rate) and how its tasks are built
    (``task_builder``: a key of :data:`lasium.data.episodes.EPISODE_SAMPLERS`). ``source`` cites it."""

    dataset: str
    ways: int
    shots: tuple[int, ...]
    queries: int
    tasks: int
    adapt_steps: int
    adapt_lr: float
    task_builder: str
    source: str


PAPER_PROTOCOLS: dict[str, PaperProtocol] = {
    p.dataset: p
    for p in (
        PaperProtocol(
            "omniglot", 5, (1, 5), 15, 1000, 50, 0.4, "classes",
            "LASIUM paper; models/lasiummamlgan/maml_gan_omniglot.py (lr_inner_ml 0.4, evaluate(50))",
        ),
        PaperProtocol(
            "celeba", 5, (1, 5, 15), 15, 1000, 50, 0.05, "classes",
            "LASIUM paper; models/lasiumprotonetsgan/protonets_gan_celeba_progan.py (n 5, k_val_test 15); "
            "models/maml/maml_celeba.py (lr_inner_ml 0.05, evaluate(50))",
        ),
        PaperProtocol(
            "celeba-attributes", 2, (5,), 5, 1000, 50, 0.05, "attributes",
            "Hsu et al., ICLR 2019; models/lasiumprotonetsgan/protonets_gan_celeba_progan_attributes_task.py "
            "(n 2, k_test 5, k_val_test 5)",
        ),
        PaperProtocol(
            "mini-imagenet", 5, (1, 5, 20, 50), 15, 1000, 50, 0.05, "classes",
            "LASIUM paper; models/lasiumprotonetsgan/protonets_gan_mini_imagenet_bigbigan.py (k_test 1, 5, 20, 50; "
            "k_val_test 15); models/lasiummamlgan/maml_gan_mini_imagenet.py (lr_inner_ml 0.05, evaluate(50))",
        ),
    )
}  # fmt: skip


def paper_protocol(dataset: str) -> PaperProtocol | None:
    """The paper's protocol for ``dataset`` (a registry name), or None (image folders have none)."""
    return PAPER_PROTOCOLS.get(dataset)


@dataclass
class EvalProtocol:
    """Everything that fixes the evaluation tasks and the adaptation applied to them (saved in the JSON)."""

    dataset: str = "omniglot"
    split: str = "test"
    ways: int = 5
    shots: tuple[int, ...] = DEFAULT_SHOTS
    queries: int = 15
    tasks: int = 1000
    seed: int = 0
    adapt_steps: int = 50  # MAML inner SGD steps on each test task's support set
    adapt_lr: float = 0.4  # MAML inner learning rate at test time

    def validate(self) -> EvalProtocol:
        """Raise :class:`ConfigError` on an impossible setting, before any data is read."""
        if self.split not in ("train", "val", "test"):
            raise ConfigError(f"--split must be train, val or test, got {self.split!r}")
        if self.ways < 2:
            raise ConfigError(f"--ways must be at least 2, got {self.ways}")
        if not self.shots or any(k < 1 for k in self.shots):
            raise ConfigError(
                f"--shots must be positive whole numbers, got {','.join(map(str, self.shots)) or 'nothing'}"
            )
        if len(set(self.shots)) != len(self.shots):
            raise ConfigError(f"--shots lists a value twice: {','.join(map(str, self.shots))}")
        for name, value in (("queries", self.queries), ("tasks", self.tasks)):
            if value < 1:
                raise ConfigError(f"--{name} must be at least 1, got {value}")
        if self.adapt_steps < 0:
            raise ConfigError(f"--adapt-steps must be 0 or more, got {self.adapt_steps}")
        if not (self.adapt_lr > 0 and math.isfinite(self.adapt_lr)):
            raise ConfigError(f"--adapt-lr must be a positive number, got {self.adapt_lr}")
        return self

    @classmethod
    def for_dataset(cls, dataset: str = "omniglot", **overrides: Any) -> EvalProtocol:
        """The paper's protocol for ``dataset`` (:data:`PAPER_PROTOCOLS`: ways, shots, queries, tasks, MAML's
        adaptation) with ``overrides`` applied (None values are ignored). A dataset without one (an image
        folder) gets this class's defaults: 5-way, K_tr 1 and 5, 15 queries, 1000 tasks, 50 steps of lr 0.4."""
        paper = paper_protocol(dataset)
        values: dict[str, Any] = {}
        if paper is not None:
            values = dict(
                ways=paper.ways,
                shots=paper.shots,
                queries=paper.queries,
                tasks=paper.tasks,
                adapt_steps=paper.adapt_steps,
                adapt_lr=paper.adapt_lr,
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(dataset=dataset, **values)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shots"] = list(self.shots)
        d["ci"] = "95% = 1.96 * std / sqrt(tasks), std over tasks (ddof 0)"
        return d


def parse_shots(text: str) -> tuple[int, ...]:
    """``"1,5"`` → ``(1, 5)``; raises :class:`ConfigError` with one line on anything else."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        shots = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"--shots must be a comma-separated list of whole numbers such as 1,5, got {text!r}"
        ) from None
    if any(k < 1 for k in shots):
        raise ConfigError(f"--shots must be positive, got {text!r}")
    if len(set(shots)) != len(shots):
        raise ConfigError(f"--shots lists a value twice: {text!r}")
    return shots


def mean_ci95(accuracies: np.ndarray | list[float]) -> tuple[float, float]:
    """Mean of per-task accuracies and the half-width of its 95% interval, 1.96·std/√n (std with ddof 0,
    as the MAML reference code computes it; 0 for a single task)."""
    acc = np.asarray(accuracies, dtype=np.float64)
    if acc.size == 0:
        raise ValueError("no accuracies to summarize")
    ci = 1.96 * float(acc.std()) / math.sqrt(acc.size) if acc.size > 1 else 0.0
    return float(acc.mean()), ci


@dataclass
class Episodes:
    """The evaluation tasks of one K_tr, stacked: support (T, N, K_tr, H, W, C) and query (T, N, Q, H, W, C)
    uint8, ``perm`` (T, N) the label of class row i in task t (a fixed random permutation per task, so a
    learner's output order carries no information), and ``digest`` (sha256 of all three)."""

    shots: int
    support: np.ndarray
    query: np.ndarray
    perm: np.ndarray
    digest: str

    def __len__(self) -> int:
        return int(self.support.shape[0])


def episode_digest(support: np.ndarray, query: np.ndarray, perm: np.ndarray) -> str:
    """sha256 over the shapes and bytes of the support, query and label arrays."""
    h = hashlib.sha256()
    for name, arr in (("support", support), ("query", query), ("perm", perm)):
        arr = np.ascontiguousarray(arr)
        h.update(f"{name}:{arr.dtype.str}:{arr.shape};".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def combined_digest(digests: dict[int, str]) -> str:
    """One digest for all shots (sorted by K_tr): equal iff every per-shot episode set is equal."""
    h = hashlib.sha256()
    for shots in sorted(digests):
        h.update(f"{shots}:{digests[shots]};".encode())
    return h.hexdigest()


def make_episodes(images: LabeledImages, protocol: EvalProtocol, shots: int) -> Episodes:
    """The ``protocol.tasks`` evaluation episodes with ``shots`` support images per class, built by the sampler
    of the split's kind (:func:`lasium.data.episode_sampler`: classes, or CelebA attribute conjunctions)."""
    paper = paper_protocol(protocol.dataset)
    if paper is not None and paper.task_builder != images.task_kind:
        raise ConfigError(
            f"{protocol.dataset} tasks are built from {paper.task_builder}, but the images loaded for it carry "
            f"{images.task_kind}: load them with load_split({protocol.dataset!r}, ...)"
        )
    sampler = episode_sampler(images, protocol.ways, shots, protocol.queries, protocol.seed)
    batch = sampler.tasks(0, protocol.tasks)
    perm = np.stack(
        [numpy_rng(protocol.seed, "eval-labels", i).permutation(protocol.ways) for i in range(protocol.tasks)]
    ).astype(np.int64)
    support, query = np.ascontiguousarray(batch.support), np.ascontiguousarray(batch.query)
    return Episodes(shots, support, query, perm, episode_digest(support, query, perm))
