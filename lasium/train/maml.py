"""MAML and first-order MAML (Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of
Deep Networks", ICML 2017).

The inner loop is a small functional update, learn2learn-style: ``params ← params − lr · ∇ loss(params)``
on the support set, written with ``torch.func.grad`` so it nests inside the outer ``grad`` (second order:
the meta-gradient differentiates through the inner gradients) and vmaps over tasks.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import grad

from lasium.train.learner import Backbone, LearnerConfig, MetaLearner, Params, full_precision


class MAML(MetaLearner):
    """Second-order MAML: backbone (Conv-4 by default) + linear head, adapted by ``inner_steps`` SGD steps of
    ``inner_lr``."""

    algo = "maml"
    second_order = True

    def __init__(self, config: LearnerConfig, backbone: nn.Module | None = None) -> None:
        super().__init__(config, backbone)
        self.head = nn.Linear(cast(Backbone, self.backbone).out_features, self.ways)

    def logits(self, params: Params, images: torch.Tensor) -> torch.Tensor:
        """Class scores of ``images`` under ``params`` (meta or adapted)."""
        return F.linear(self._features(params, images), params["head.weight"], params["head.bias"])

    def support_loss(self, params: Params, support: torch.Tensor, support_labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(full_precision(self.logits(params, support)), support_labels)

    def adapt(
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        params: Params | None = None,
        *,
        steps: int | None = None,
        lr: float | None = None,
    ) -> Params:
        """``steps`` gradient steps on the support loss (defaults: the config's inner steps and lr).

        For evaluation call it under ``torch.no_grad()``: the inner gradients are still computed (``grad``
        is a function transform) but no graph is kept across steps.
        """
        steps = self.config.inner_steps if steps is None else int(steps)
        lr = self.config.inner_lr if lr is None else float(lr)
        params = self.meta_params() if params is None else params
        inner_grad = grad(self.support_loss)
        for _ in range(steps):
            grads = inner_grad(params, support, support_labels)
            if not self.second_order:
                # First order: the meta-gradient treats the inner gradients as constants.
                grads = {k: g.detach() for k, g in grads.items()}
            params = {k: p - lr * grads[k] for k, p in params.items()}
        return params

    def predict(self, params: Params, query: torch.Tensor) -> torch.Tensor:
        return self.logits(params, query)


class FirstOrderMAML(MAML):
    """First-order MAML (FOMAML, Finn et al. 2017 §5.2): same inner loop, inner gradients detached."""

    algo = "fomaml"
    second_order = False
