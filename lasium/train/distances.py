"""How ProtoNets compare a query's features with a prototype, by name (``lasium-train --distance``).

Each distance maps the squared differences (…, D) of the features to one number per prototype (…). The two here rank
the prototypes alike, so the nearest one, and so every evaluation accuracy, is the same; what differs is the scale of
the logits, so the softmax of the training loss and its gradients. A new distance is one entry of :data:`DISTANCES`.

- ``squared-euclidean``: the sum over the D dimensions, the squared Euclidean distance of Snell, Swersky & Zemel,
  "Prototypical Networks for Few-shot Learning" (NeurIPS 2017).
- ``mean-squared``: the mean over the dimensions (the same distance / D), what the LASIUM authors' ProtoNets compute
  (``docs/reference-facts.md``, Budgets).

Light on purpose (no torch at import): command-line modules read the names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

Distance = Callable[["torch.Tensor"], "torch.Tensor"]  # squared differences (…, D) -> distances (…)

DISTANCES: dict[str, Distance] = {
    "squared-euclidean": lambda squared: squared.sum(-1),
    "mean-squared": lambda squared: squared.mean(-1),
}
DEFAULT_DISTANCE = "squared-euclidean"
DEFAULT_TEMPERATURE = 1.0  # --temperature: the logits are minus the distances themselves
