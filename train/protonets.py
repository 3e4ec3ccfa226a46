"""Prototypical Networks (Snell, Swersky & Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017).

A class is represented by the mean backbone feature of its support images (its prototype); a query image
is scored by the negative squared Euclidean distance to each prototype. There is no inner loop: ``adapt``
only computes prototypes, so ``steps`` and ``lr`` are ignored.
"""

from __future__ import annotations

import torch

from lasium.train.learner import MetaLearner, Params, full_precision


class ProtoNets(MetaLearner):
    """Nearest class mean in Conv-4 feature space, squared Euclidean distance."""

    algo = "protonets"
    adapts = False  # prototypes come from the support set as it is: no inner loop

    def adapt(self, support: torch.Tensor, support_labels: torch.Tensor, steps: int | None = None,
              lr: float | None = None, params: Params | None = None) -> Params:
        """The meta-parameters plus ``prototypes`` (N, D): class means of the support features."""
        params = self.meta_params() if params is None else params
        features = full_precision(self._features(params, support))
        # One-hot by comparison (not F.one_hot) so it stays vmappable; labels may come in any order.
        classes = torch.arange(self.ways, device=support_labels.device)
        onehot = (support_labels[:, None] == classes[None, :]).to(features.dtype)
        prototypes = onehot.T @ features / onehot.sum(0).clamp(min=1)[:, None]
        return {**params, "prototypes": prototypes}

    def predict(self, params: Params, query: torch.Tensor) -> torch.Tensor:
        features = full_precision(self._features(params, query))
        return -((features[:, None, :] - params["prototypes"][None, :, :]) ** 2).sum(-1)
