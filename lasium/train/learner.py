"""What every meta-learner shares: the backbone, the functional task loss and the vmapped meta-gradient.

A learner is a plain ``nn.Module`` whose parameters are the meta-parameters. Everything task-specific is
functional (``torch.func``): ``adapt`` turns one task's support set into task parameters, ``predict``
scores query images with them, and both are vmappable, so a meta-batch of tasks, or a chunk of 1000
evaluation tasks, runs as one batched computation instead of a Python loop over tasks.

Inputs follow ``docs/ARCHITECTURE.md``: one task's support images (N·K_tr, C, H, W) float in [0, 1] with
labels (N·K_tr,) long, query images and labels likewise; batched calls add a leading task axis.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from lasium.errors import ConfigError
from lasium.train.backbone import BACKBONES, full_precision
from lasium.train.distances import DEFAULT_DISTANCE, DEFAULT_TEMPERATURE

Params = dict[str, torch.Tensor]
"""Named tensors: the meta-parameters, or a task's adapted parameters (plus ``prototypes`` for ProtoNets)."""


@dataclass
class LearnerConfig:
    """Everything needed to rebuild a learner (saved as JSON beside its weights)."""

    algo: str
    ways: int
    image_shape: tuple[int, int, int]
    hidden: int = 64
    inner_steps: int = 5
    inner_lr: float = 0.4
    backbone: str = "conv4"  # a name in lasium.train.backbone.BACKBONES (checkpoints before it existed: conv4)
    distance: str = DEFAULT_DISTANCE  # ProtoNets: a name in lasium.train.distances.DISTANCES
    # ProtoNets: logits = -distance / temperature (checkpoints before it existed: 1)
    temperature: float = DEFAULT_TEMPERATURE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnerConfig:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["image_shape"] = tuple(int(s) for s in fields["image_shape"])
        return cls(**fields)


@dataclass
class MetaGradients:
    """Result of one meta-batch: gradients averaged over its tasks, and per-task query loss and accuracy."""

    grads: Params
    loss: torch.Tensor
    accuracy: torch.Tensor


class Backbone(Protocol):
    """What a learner needs of its feature extractor (an ``nn.Module``): ``out_features``, and ``forward`` taking
    one batch (n, C, H, W) → (n, out_features), or T tasks' images (T, n, C, H, W) → (T, n, out_features) with
    any batch statistics computed per task. It must hold no buffers (a pure function of its parameters for
    ``torch.func``)."""

    out_features: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


class MetaLearner(nn.Module):
    """Base class: an injected backbone, ``adapt``/``predict`` per task, and the meta-gradient over tasks.

    Subclasses implement :meth:`adapt` and :meth:`predict` for ONE task; the base class vmaps them. The backbone
    is ``backbone`` when given (any module meeting :class:`Backbone`), else ``BACKBONES[config.backbone]``
    (default ``conv4``); register a new one in :data:`lasium.train.backbone.BACKBONES` so that checkpoints
    naming it can be rebuilt by ``lasium-eval`` and ``--resume``.
    """

    algo: ClassVar[str] = ""
    adapts: ClassVar[bool] = True  # is there an inner loop (at training and at test time)? ProtoNets: no
    second_order: ClassVar[bool] = False  # does the meta-gradient differentiate through inner gradients?

    def __init__(self, config: LearnerConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        if config.ways < 2:
            raise ConfigError(f"a task needs at least 2 classes, got ways={config.ways}")
        self.config = config
        self.ways = int(config.ways)
        if backbone is None:
            if config.backbone not in BACKBONES:
                raise ConfigError(f"unknown backbone {config.backbone!r}; choose one of {', '.join(BACKBONES)}")
            backbone = BACKBONES[config.backbone](config.image_shape, config.hidden)
        self.backbone = backbone

    def with_ways(self, ways: int) -> MetaLearner:
        """This learner for ``ways``-way tasks: itself for its own N. A learner with an N-way head (MAML) has no
        other N; learners without one override this (:meth:`ProtoNets.with_ways`)."""
        if ways == self.ways:
            return self
        raise ConfigError(
            f"this {self.algo} learner has a {self.ways}-way head and cannot score {ways}-way tasks; "
            f"score it on {self.ways}-way tasks or train a {ways}-way learner"
        )

    def _sharing_weights(self, ways: int) -> MetaLearner:
        """A view of this learner for ``ways``-way tasks that shares its modules and parameters (no copy)."""
        if ways < 2:
            raise ConfigError(f"a task needs at least 2 classes, got ways={ways}")
        view = copy.copy(self)  # a shallow copy: the same backbone module, so the same tensors
        view.config = replace(self.config, ways=ways)
        view.ways = int(ways)
        return view

    # --- per task (vmappable) -------------------------------------------------------------------
    def meta_params(self) -> Params:
        """The live meta-parameters by name (gradients flow into the module)."""
        return dict(self.named_parameters())

    def adapt(self, support: torch.Tensor, support_labels: torch.Tensor, params: Params | None = None) -> Params:
        """Task parameters from one task's support set (N·K_tr, C, H, W) and labels (N·K_tr,).

        Learners with an inner loop (:attr:`adapts`) take its settings as keyword arguments of their own
        (MAML: ``steps``, ``lr``); :func:`inner_loop_options` builds them for any learner."""
        raise NotImplementedError

    def predict(self, params: Params, query: torch.Tensor) -> torch.Tensor:
        """Logits (M, N) for one task's query images (M, C, H, W), given its adapted ``params``."""
        raise NotImplementedError

    def task_loss(
        self,
        params: Params,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        query: torch.Tensor,
        query_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Query cross-entropy of one task after adaptation, and its query accuracy (as aux output)."""
        logits = full_precision(self.predict(self.adapt(support, support_labels, params), query))
        loss = F.cross_entropy(logits, query_labels)
        accuracy = (logits.argmax(-1) == query_labels).float().mean()
        return loss, accuracy.detach()

    def _features(self, params: Params, images: torch.Tensor) -> torch.Tensor:
        """Backbone features of ``images`` with the backbone entries of ``params``."""
        backbone = {k[len("backbone.") :]: v for k, v in params.items() if k.startswith("backbone.")}
        return functional_call(self.backbone, backbone, (images,))

    # --- over tasks -----------------------------------------------------------------------------
    def meta_gradients(
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        query: torch.Tensor,
        query_labels: torch.Tensor,
        vectorize: bool = True,
    ) -> MetaGradients:
        """Gradient of the mean query loss over a meta-batch (T tasks on the leading axis).

        Learners whose meta-gradient differentiates through inner gradients (second-order MAML) use
        ``vmap(grad(task_loss))``: ``vmap(task_loss)`` followed by ``backward()`` gives wrong second-order
        gradients through batch norm under vmap (checked against a hand-written ``create_graph=True`` loop
        in the tests). The others take ``vmap(task_loss)`` and one ordinary backward pass, which avoids
        per-task weight gradients (much faster). ``vectorize=False`` loops over tasks instead (the
        baseline of the benchmark).
        """
        args = (support, support_labels, query, query_labels)
        if self.second_order:
            params = {k: v.detach() for k, v in self.meta_params().items()}
            task_grad = grad_and_value(self.task_loss, has_aux=True)
            if vectorize:
                grads, (loss, accuracy) = vmap(task_grad, in_dims=(None, 0, 0, 0, 0))(params, *args)
                return MetaGradients({k: g.mean(0) for k, g in grads.items()}, loss.detach(), accuracy)
            results = [task_grad(params, *(a[t] for a in args)) for t in range(support.shape[0])]
            grads = {k: torch.stack([r[0][k] for r in results]).mean(0) for k in params}
            return MetaGradients(
                grads, torch.stack([r[1][0] for r in results]).detach(), torch.stack([r[1][1] for r in results])
            )
        params = self.meta_params()
        if vectorize:
            loss, accuracy = vmap(self.task_loss, in_dims=(None, 0, 0, 0, 0))(params, *args)
        else:
            pairs = [self.task_loss(params, *(a[t] for a in args)) for t in range(support.shape[0])]
            loss, accuracy = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        grads = torch.autograd.grad(loss.mean(), list(params.values()))
        return MetaGradients(dict(zip(params, grads)), loss.detach(), accuracy)

    def adapt_tasks(
        self, support: torch.Tensor, support_labels: torch.Tensor, params: Params | None = None, **inner_loop: Any
    ) -> Params:
        """:meth:`adapt` vmapped over a leading task axis; returned tensors gain that axis too (``inner_loop``:
        the keyword arguments of the learner's own :meth:`adapt`, see :func:`inner_loop_options`).

        One task is adapted without ``vmap``: its batching rules (per-task weights as grouped convolutions, moved
        dimensions) cost more than they save for a single task (MAML's test-time steps 1.12-1.24x faster on a CPU,
        ``benchmarks/bench_eval.py --chunks 1,2``).
        """
        params = self.meta_params() if params is None else params
        if support.shape[0] == 1:
            one = self.adapt(support[0], support_labels[0], params, **inner_loop)
            return {k: v.unsqueeze(0) for k, v in one.items()}
        return vmap(lambda s, y: self.adapt(s, y, params, **inner_loop))(support, support_labels)

    def predict_tasks(self, params: Params, query: torch.Tensor) -> torch.Tensor:
        """:meth:`predict` vmapped over tasks: ``params`` from :meth:`adapt_tasks`, query (T, M, C, H, W)."""
        if query.shape[0] == 1:  # one task: no vmap, as in adapt_tasks
            return self.predict({k: v[0] for k, v in params.items()}, query[0]).unsqueeze(0)
        return vmap(self.predict)(params, query)


def inner_loop_options(learner: MetaLearner, steps: int | None, lr: float | None) -> dict[str, Any]:
    """Keyword arguments of ``learner.adapt`` for an inner loop of ``steps`` steps of ``lr`` (None: the learner's
    own); empty for learners without an inner loop, whose ``adapt`` takes none."""
    return {"steps": steps, "lr": lr} if learner.adapts else {}
