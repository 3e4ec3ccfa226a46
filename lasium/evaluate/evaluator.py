"""Evaluate a trained learner (or a baseline) on real labeled few-shot tasks; the library behind ``lasium-eval``.

Example::

    from lasium.evaluate import EvalProtocol, evaluate_checkpoint
    report = evaluate_checkpoint("runs/ro-maml", EvalProtocol(dataset="omniglot", shots=(1, 5)))
    for r in report.results:
        print(r.shots, f"{100 * r.accuracy:.2f} ± {100 * r.ci95:.2f}")
    report.to_dict()   # what lasium-eval writes as JSON

Every method evaluated with the same protocol (dataset, split, ways, shots, queries, tasks, seed) sees the
same episodes; ``ShotResult.episode_digest`` (and ``EvalReport.episode_digest`` over all shots) proves it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import lasium
from lasium.checkpoint_folder import state_dict_sha256
from lasium.data import LabeledImages, load_split
from lasium.errors import ConfigError, DataError
from lasium.evaluate.baselines import scratch_learner
from lasium.evaluate.journal import EvalJournal
from lasium.evaluate.protocol import EvalProtocol, combined_digest, make_episodes, mean_ci95, paper_protocol
from lasium.evaluate.scoring import default_chunk, score_episodes
from lasium.precision import autocast_for
from lasium.runtime import describe_device, resolve_device
from lasium.train import STATE_FILE, MetaLearner, find_checkpoint, load_learner

REPORT_FORMAT = "lasium-eval"
REPORT_VERSION = 1


@dataclass
class ShotResult:
    """Score for one K_tr: mean query accuracy over tasks and its 95% half-width (fractions in [0, 1])."""

    shots: int
    accuracy: float
    ci95: float
    tasks: int
    episode_digest: str
    seconds: float
    chunk: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["accuracy_pct"], d["ci95_pct"] = round(100 * self.accuracy, 2), round(100 * self.ci95, 2)
        return d


@dataclass
class EvalReport:
    """Everything ``lasium-eval`` records: the method, the protocol, the data, the scores and where they came from."""

    method: dict[str, Any]
    learner: dict[str, Any]
    protocol: dict[str, Any]
    dataset: dict[str, Any]
    results: list[ShotResult]
    device: dict[str, Any]
    precision: str
    wall_seconds: float = 0.0
    train_config: dict[str, Any] | None = None
    checkpoint_state: dict[str, Any] | None = None
    command: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def episode_digest(self) -> str:
        return combined_digest({r.shots: r.episode_digest for r in self.results})

    def result(self, shots: int) -> ShotResult:
        for r in self.results:
            if r.shots == shots:
                return r
        raise KeyError(shots)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "format_version": REPORT_VERSION,
            "lasium_version": lasium.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": self.command,
            "method": self.method,
            "learner": self.learner,
            "train_config": self.train_config,
            "checkpoint_state": self.checkpoint_state,
            "protocol": self.protocol,
            "dataset": self.dataset,
            "episode_digest": self.episode_digest,
            "results": [r.to_dict() for r in self.results],
            "device": self.device,
            "precision": self.precision,
            "wall_seconds": round(self.wall_seconds, 3),
            **self.extra,
        }


def load_eval_images(
    protocol: EvalProtocol, image_shape: tuple[int, int, int], *, data_root: str | None = None, progress: bool = True
) -> LabeledImages:
    """The protocol's split at the learner's image size and channels."""
    h, w, c = (int(s) for s in image_shape)
    images = load_split(
        protocol.dataset, protocol.split, data_root=data_root, image_size=(h, w), channels=c, progress=progress
    )
    if images.image_shape != (h, w, c):
        raise DataError(
            f"{protocol.dataset} {protocol.split} has images of {images.image_shape}, the learner takes "
            f"{h}x{w}x{c}; evaluate on a dataset with matching images"
        )
    return images


def with_ways(learner: MetaLearner, ways: int, dataset: str | None = None) -> MetaLearner:
    """The learner for ``ways``-way tasks: ProtoNets work for any N (same weights); MAML's head fixes N."""
    if ways == learner.ways:
        return learner
    if learner.adapts:
        paper = paper_protocol(dataset) if dataset else None
        if paper is not None and paper.task_builder == "attributes":  # 2-way by construction: no --ways helps
            raise ConfigError(
                f"{dataset} tasks are {ways}-way and this {learner.algo} learner has a {learner.ways}-way head; "
                f"train {learner.algo} on {ways}-way shards (lasium-gen --ways {ways}) or evaluate ProtoNets"
            )
        raise ConfigError(
            f"this {learner.algo} learner has a {learner.ways}-way head and cannot score {ways}-way tasks; "
            f"pass --ways {learner.ways}"
        )
    return learner.with_ways(ways)


def evaluate_learner(
    learner: MetaLearner,
    protocol: EvalProtocol,
    *,
    device: str | torch.device = "auto",
    images: LabeledImages | None = None,
    chunk: int | None = None,
    precision: str = "auto",
    data_root: str | None = None,
    progress: bool = True,
    method: dict[str, Any] | None = None,
    journal: EvalJournal | None = None,
    workers: int = 1,
) -> EvalReport:
    """Score ``learner`` on the protocol's episodes, one :class:`ShotResult` per K_tr.

    ``workers`` > 1 scores the tasks in that many processes of one thread each (CPU only;
    :mod:`lasium.evaluate.parallel`): the same scores, sooner on a machine with that many free cores.

    With a ``journal`` the per-task accuracies are saved after every chunk, and tasks it already holds for
    this very evaluation (same weights, protocol, episodes, precision, chunk and device type) are not scored
    again: an interrupted evaluation continues where it stopped, with the same result.
    """
    protocol.validate()
    start = time.perf_counter()
    dev = device if isinstance(device, torch.device) else resolve_device(device, local_rank=0)
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and dev.type != "cpu":
        raise ConfigError(
            f"--workers {workers} is for evaluating on a CPU; on {dev.type} one process scores a chunk of tasks "
            "at once (raise --chunk instead)"
        )
    learner = with_ways(learner, protocol.ways, protocol.dataset).to(dev)
    if images is None:
        images = load_eval_images(protocol, learner.config.image_shape, data_root=data_root, progress=progress)
    autocast, precision_used = autocast_for(precision, dev)
    chunk = int(chunk or default_chunk(dev))
    steps = protocol.adapt_steps if learner.adapts else None
    lr = protocol.adapt_lr if learner.adapts else None
    if journal is not None:
        journal.start(
            {
                "weights": state_dict_sha256(learner),
                "learner": learner.config.to_dict(),
                "protocol": protocol.to_dict(),
                "precision": precision_used,
                "chunk": chunk,
                "device": dev.type,
            }
        )
    results = []
    for shots in protocol.shots:
        episodes = make_episodes(images, protocol, shots)
        t0 = time.perf_counter()
        scored, on_chunk = None, None
        if journal is not None:
            scored = journal.scored(shots, episodes.digest, len(episodes))

            def on_chunk(acc: Any, shots: int = shots, digest: str = episodes.digest) -> None:
                journal.record(shots, digest, acc)

        acc = score_episodes(
            learner,
            episodes,
            dev,
            steps=steps,
            lr=lr,
            chunk=chunk,
            autocast=autocast,
            progress=progress,
            desc=f"{learner.algo} {protocol.ways}-way {shots}-shot",
            scored=scored,
            on_chunk=on_chunk,
            workers=workers,
            precision=precision_used,
        )
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        mean, ci = mean_ci95(acc)
        results.append(
            ShotResult(shots, mean, ci, len(acc), episodes.digest, round(time.perf_counter() - t0, 3), chunk)
        )
    dataset = {
        "name": images.name,
        "split": images.split,
        "classes": images.num_classes,
        "images": len(images),
        "image_shape": list(images.image_shape),
        "fingerprint": images.fingerprint,
    }
    extra: dict[str, Any] = {}
    if journal is not None:
        extra["resumed_tasks"] = {str(k): v for k, v in journal.resumed.items() if v}
    if workers > 1:
        extra["workers"] = workers  # how the wall time was spent (the scores are the same)
    return EvalReport(
        method=method or {"kind": "learner", "algo": learner.algo},
        learner=learner.config.to_dict(),
        protocol=protocol.to_dict(),
        dataset=dataset,
        results=results,
        device=describe_device(dev),
        precision=precision_used,
        wall_seconds=time.perf_counter() - start,
        extra={k: v for k, v in extra.items() if v},
    )


def checkpoint_state(folder: Path) -> dict[str, Any] | None:
    """The training step and best validation accuracy recorded beside the weights, when present."""
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    keep = ("step", "tasks_seen", "best_val_accuracy", "best_step", "precision", "ema_updates")
    return {k: state[k] for k in keep if k in state}


def evaluate_checkpoint(
    path: str | Path,
    protocol: EvalProtocol,
    *,
    device: str | torch.device = "auto",
    chunk: int | None = None,
    precision: str = "auto",
    data_root: str | None = None,
    progress: bool = True,
    journal: EvalJournal | None = None,
    workers: int = 1,
) -> EvalReport:
    """Load a run folder (its ``best/``, else ``last/``) or checkpoint folder and evaluate it."""
    folder = find_checkpoint(path)
    dev = device if isinstance(device, torch.device) else resolve_device(device, local_rank=0)
    learner, train_config = load_learner(folder, device=dev)
    method = {"kind": "checkpoint", "algo": learner.algo, "checkpoint": str(folder), "run": str(path)}
    report = evaluate_learner(
        learner,
        protocol,
        device=dev,
        chunk=chunk,
        precision=precision,
        data_root=data_root,
        progress=progress,
        method=method,
        journal=journal,
        workers=workers,
    )
    report.train_config = train_config.to_dict()
    report.checkpoint_state = checkpoint_state(folder)
    return report


def evaluate_scratch(
    algo: str,
    protocol: EvalProtocol,
    *,
    init_seed: int = 0,
    device: str | torch.device = "auto",
    image_size: int | None = None,
    chunk: int | None = None,
    precision: str = "auto",
    data_root: str | None = None,
    progress: bool = True,
    images: LabeledImages | None = None,
    journal: EvalJournal | None = None,
    workers: int = 1,
) -> EvalReport:
    """The training-from-scratch baseline: a random ``algo`` learner (seeded by ``init_seed``) on each test task,
    for the dataset's images at ``image_size`` (default: the dataset's, 28 for Omniglot, 84 for CelebA and
    mini-ImageNet)."""
    protocol.validate()
    if images is None:
        images = load_split(
            protocol.dataset, protocol.split, data_root=data_root, image_size=image_size, progress=progress
        )
    learner = scratch_learner(algo, protocol.ways, images.image_shape, seed=init_seed)
    method = {"kind": "baseline", "baseline": "scratch", "algo": algo, "init_seed": init_seed}
    return evaluate_learner(
        learner,
        protocol,
        device=device,
        images=images,
        chunk=chunk,
        precision=precision,
        data_root=data_root,
        progress=progress,
        method=method,
        journal=journal,
        workers=workers,
    )
