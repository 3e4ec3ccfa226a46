"""Prototypical Networks (Snell, Swersky & Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017).

A class is represented by the mean backbone feature of its support images (its prototype); a query image
is scored by the negative squared Euclidean distance to each prototype (or by its mean over the feature dimensions,
the LASIUM authors' choice: :mod:`lasium.train.distances`), divided by a softmax temperature T (1 by default; the
name as in Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015). There is no inner loop:
``adapt`` only computes prototypes (and takes no inner-loop settings).

With no per-task weights, a meta-batch needs no ``vmap``: ``adapt``/``predict`` accept one task or T tasks
on a leading axis, and the backbone runs all T tasks' images in one pass with batch norm per task (see
``lasium.train.backbone``), which is several times cheaper than T vmapped passes on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lasium.errors import ConfigError
from lasium.train.distances import DISTANCES
from lasium.train.learner import LearnerConfig, MetaGradients, MetaLearner, Params, full_precision


class ProtoNets(MetaLearner):
    """Nearest class mean in the backbone's feature space (Conv-4 by default), by ``config.distance``."""

    algo = "protonets"
    adapts = False  # prototypes come from the support set as it is: no inner loop

    def __init__(self, config: LearnerConfig, backbone: nn.Module | None = None) -> None:
        if config.distance not in DISTANCES:
            raise ConfigError(f"unknown distance {config.distance!r}; choose one of {', '.join(DISTANCES)}")
        if config.temperature <= 0:
            raise ConfigError(f"the temperature must be positive, got {config.temperature}")
        super().__init__(config, backbone)
        self.distance = DISTANCES[config.distance]
        self.temperature = float(config.temperature)

    def with_ways(self, ways: int) -> ProtoNets:
        """The same learner for ``ways``-way tasks: prototypes need no N-way head, so any N shares these weights."""
        return self if ways == self.ways else self._sharing_weights(ways)  # type: ignore[return-value]

    def adapt(self, support: torch.Tensor, support_labels: torch.Tensor, params: Params | None = None) -> Params:
        """The meta-parameters plus ``prototypes`` (N, D), or (T, N, D) for T tasks.

        Prototypes are the class means of the support features.
        """
        params = self.meta_params() if params is None else params
        features = full_precision(self._features(params, support))
        # One-hot by comparison (not F.one_hot) so it stays vmappable; labels may come in any order.
        classes = torch.arange(self.ways, device=support_labels.device)
        onehot = (support_labels[..., :, None] == classes).to(features.dtype)
        prototypes = onehot.transpose(-1, -2) @ features / onehot.sum(-2).clamp(min=1)[..., None]
        return {**params, "prototypes": prototypes}

    def predict(self, params: Params, query: torch.Tensor) -> torch.Tensor:
        """Logits (M, N), or (T, M, N) for T tasks' queries (T, M, C, H, W): minus the distances / the temperature."""
        features = full_precision(self._features(params, query))
        distances = self.distance((features[..., :, None, :] - params["prototypes"][..., None, :, :]) ** 2)
        return -distances / self.temperature

    # --- over tasks: batched directly, no vmap -------------------------------------------------------
    def adapt_tasks(  # type: ignore[override]  # no inner-loop settings
        self, support: torch.Tensor, support_labels: torch.Tensor, params: Params | None = None
    ) -> Params:
        """Prototypes (T, N, D) of T tasks in one batched pass (the meta-parameters carry no task axis)."""
        return self.adapt(support, support_labels, params)

    def predict_tasks(self, params: Params, query: torch.Tensor) -> torch.Tensor:
        return self.predict(params, query)

    def meta_gradients(
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        query: torch.Tensor,
        query_labels: torch.Tensor,
        vectorize: bool = True,
    ) -> MetaGradients:
        """Mean query loss gradient over T tasks, all in one batched pass (``vectorize=False``: a loop over tasks)."""
        if not vectorize:
            return super().meta_gradients(support, support_labels, query, query_labels, vectorize=False)
        params = self.meta_params()
        logits = full_precision(self.predict(self.adapt(support, support_labels, params), query))
        t, m = logits.shape[:2]
        loss = (
            F.cross_entropy(logits.reshape(t * m, -1), query_labels.reshape(-1), reduction="none").reshape(t, m).mean(1)
        )
        accuracy = (logits.argmax(-1) == query_labels).float().mean(1)
        grads = torch.autograd.grad(loss.mean(), list(params.values()))
        return MetaGradients(dict(zip(params, grads)), loss.detach(), accuracy.detach())
