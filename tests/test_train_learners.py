"""Learners: MAML meta-gradients against hand-written autograd, ProtoNets against a direct computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from lasium.errors import ConfigError
from lasium.train.learner import LearnerConfig
from lasium.train.maml import MAML, FirstOrderMAML
from lasium.train.protonets import ProtoNets
from lasium.train.registry import build_learner

WAYS, SHOTS, QUERIES, STEPS, LR = 3, 2, 2, 2, 0.3
SHAPE = (16, 16, 1)


def tiny(cls, **kw):
    torch.manual_seed(0)
    cfg = LearnerConfig(algo=cls.algo, ways=WAYS, image_shape=SHAPE, hidden=4, inner_steps=STEPS, inner_lr=LR, **kw)
    return cls(cfg).double()


def tasks(n_tasks: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n_tasks, WAYS * SHOTS, 1, 16, 16, generator=g, dtype=torch.float64)
    q = torch.rand(n_tasks, WAYS * QUERIES, 1, 16, 16, generator=g, dtype=torch.float64)
    sl = torch.stack([torch.randperm(WAYS, generator=g).repeat_interleave(SHOTS) for _ in range(n_tasks)])
    ql = torch.stack([torch.randperm(WAYS, generator=g).repeat_interleave(QUERIES) for _ in range(n_tasks)])
    return s, sl, q, ql


def hand_written_meta_grad(model: MAML, s, sl, q, ql, first_order: bool):
    """MAML as in the paper, with plain autograd: inner steps with create_graph, outer backward."""
    names = [n for n, _ in model.named_parameters()]
    meta = [p for _, p in model.named_parameters()]
    total = 0.0
    for t in range(s.shape[0]):
        fast = list(meta)
        for _ in range(STEPS):
            params = dict(zip(names, fast))
            feats = functional_call(
                model.backbone, {k[9:]: v for k, v in params.items() if k.startswith("backbone.")}, (s[t],)
            )
            logits = F.linear(feats, params["head.weight"], params["head.bias"])
            loss = F.cross_entropy(logits, sl[t])
            grads = torch.autograd.grad(loss, fast, create_graph=not first_order)
            fast = [p - LR * g for p, g in zip(fast, grads)]
        params = dict(zip(names, fast))
        feats = functional_call(
            model.backbone, {k[9:]: v for k, v in params.items() if k.startswith("backbone.")}, (q[t],)
        )
        total = total + F.cross_entropy(F.linear(feats, params["head.weight"], params["head.bias"]), ql[t])
    grads = torch.autograd.grad(total / s.shape[0], meta)
    return dict(zip(names, grads))


def max_diff(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_second_order_maml_matches_autograd():
    model = tiny(MAML)
    batch = tasks(2)
    got = model.meta_gradients(*batch).grads
    want = hand_written_meta_grad(model, *batch, first_order=False)
    assert max_diff(got, want) < 1e-9


def test_first_order_maml_detaches_inner_gradients():
    model = tiny(FirstOrderMAML)
    batch = tasks(2)
    got = model.meta_gradients(*batch).grads
    assert max_diff(got, hand_written_meta_grad(model, *batch, first_order=True)) < 1e-9
    # ... and so it differs from the second-order gradient of the same weights.
    assert max_diff(got, hand_written_meta_grad(model, *batch, first_order=False)) > 1e-5


@pytest.mark.parametrize("cls", [MAML, ProtoNets])
def test_vmap_and_loop_agree(cls):
    """MAML vmaps over tasks; ProtoNets runs them as one batch with per-task batch norm: both equal a loop."""
    model = tiny(cls)
    batch = tasks(3)
    a, b = model.meta_gradients(*batch), model.meta_gradients(*batch, vectorize=False)
    assert max_diff(a.grads, b.grads) < 1e-10
    torch.testing.assert_close(a.loss, b.loss)
    torch.testing.assert_close(a.accuracy, b.accuracy)


def test_pooling_before_relu_is_the_usual_block():
    """conv → BN → max-pool → ReLU computes exactly what the usual conv → BN → ReLU → max-pool does."""
    model = tiny(ProtoNets)
    x = torch.randn(6, 1, 16, 16, dtype=torch.float64)
    usual = x
    for conv, norm, pool, relu in model.backbone.blocks:
        usual = pool(relu(norm(conv(usual))))
    assert torch.equal(model.backbone.blocks(x).flatten(1), usual.flatten(1))


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_last_cpu_path_is_the_plain_blocks(monkeypatch, channels):
    """One batch on a CPU runs channels-last with the first convolution as a matrix product: the same values and
    (second-order) gradients as the plain NCHW blocks, to float64 rounding; under vmap it takes the plain blocks."""
    from torch.func import grad, vmap

    from lasium.train import backbone as backbone_module

    calls = []
    matmul = backbone_module.conv_as_matmul
    monkeypatch.setattr(backbone_module, "conv_as_matmul", lambda conv, x: calls.append(1) or matmul(conv, x))
    torch.manual_seed(0)
    net = backbone_module.Conv4((17, 16, channels), hidden=4).double()
    x = torch.rand(6, channels, 17, 16, dtype=torch.float64)
    params = dict(net.named_parameters())

    def loss(p, fast):
        out = functional_call(net, p, (x,)) if fast else functional_call(net.blocks, strip(p), (x,)).flatten(1)
        return (out**2).sum()

    def strip(p):
        return {k[len("blocks.") :]: v for k, v in p.items()}

    torch.testing.assert_close(net(x), net.blocks(x).flatten(1), rtol=1e-12, atol=1e-12)
    assert len(calls) == 1
    for order in (1, 2):  # the gradient, and the gradient of a function of the gradient (MAML's meta-gradient)

        def objective(p, fast, order=order):
            g = grad(loss)(p, fast)
            return sum((v**2).sum() for v in g.values()) if order == 2 else loss(p, fast)

        fast, plain = grad(objective)(params, True), grad(objective)(params, False)
        scale = max(v.abs().max().item() for v in plain.values())  # conv biases before batch norm: zero, to rounding
        for k in params:
            torch.testing.assert_close(fast[k], plain[k], rtol=1e-9, atol=1e-12 * scale)
    calls.clear()
    batched = vmap(net)(x.unsqueeze(0).repeat(2, 1, 1, 1, 1))  # memory formats cannot be batched: plain blocks
    assert not calls
    torch.testing.assert_close(batched[1], net.blocks(x).flatten(1))
    monkeypatch.setattr(backbone_module.Conv4, "cpu_channels_last", False)
    assert torch.equal(net(x), net.blocks(x).flatten(1)) and not calls


def test_grouped_batch_norm_equals_one_pass_per_task():
    model = tiny(ProtoNets)
    x = torch.randn(3, 4, 1, 16, 16, dtype=torch.float64)
    batched = model.backbone(x)
    assert batched.shape == (3, 4, model.backbone.out_features)
    for t in range(3):
        torch.testing.assert_close(batched[t], model.backbone(x[t]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_both_grouped_batch_norms_compute_per_block_statistics(dtype):
    # the CPU path (native kernel per block) and the GPU path (one reduction) must be the same function
    from lasium.train.backbone import batch_norm_one_reduction, batch_norm_per_block

    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3 * 4, 5, 6, 6, generator=g) * 3 + 1).to(dtype).contiguous(memory_format=torch.channels_last)
    weight, bias = torch.rand(5, generator=g), torch.rand(5, generator=g)
    per_block = batch_norm_per_block(x, 3, weight, bias, 1e-5)
    one = batch_norm_one_reduction(x, 3, weight, bias, 1e-5)
    assert per_block.dtype == one.dtype == torch.float32
    assert per_block.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(per_block, one, rtol=1e-5, atol=1e-5)
    for t in range(3):
        block = x[4 * t : 4 * t + 4].float()
        expected = F.batch_norm(block, None, None, weight, bias, True, 0.0, 1e-5)
        torch.testing.assert_close(per_block[4 * t : 4 * t + 4], expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert batch_norm_per_block(x, 3, weight, bias, 1e-5).dtype == torch.float32  # statistics stay in fp32


def test_one_task_is_adapted_without_vmap_and_matches_the_vmapped_batch():
    model = tiny(MAML)
    s, sl, q, _ = tasks(2)
    with torch.no_grad():
        both = model.predict_tasks(model.adapt_tasks(s, sl, steps=3, lr=0.1), q)
        first = model.adapt_tasks(s[:1], sl[:1], steps=3, lr=0.1)
        alone = model.predict_tasks(first, q[:1])
        direct = model.predict(model.adapt(s[0], sl[0], steps=3, lr=0.1), q[0])
    assert all(v.shape[0] == 1 for v in first.values()) and alone.shape == (1, *both.shape[1:])
    assert torch.equal(alone[0], direct)  # the single-task path is adapt itself
    torch.testing.assert_close(alone[0], both[0], rtol=1e-4, atol=1e-4)  # vmap sums in another order


def test_adapt_is_vmappable_and_keeps_no_graph_under_no_grad():
    model = tiny(MAML)
    s, sl, q, _ = tasks(3)
    with torch.no_grad():
        batched = model.adapt_tasks(s, sl, steps=3, lr=0.1)
        logits = model.predict_tasks(batched, q)
    assert logits.shape == (3, WAYS * QUERIES, WAYS) and logits.grad_fn is None
    one = model.adapt(s[1], sl[1], steps=3, lr=0.1)
    torch.testing.assert_close(model.predict(one, q[1]).detach(), logits[1])
    # adaptation changes the parameters, zero steps does not
    assert max_diff({k: v[1] for k, v in batched.items()}, model.meta_params()) > 0
    zero = model.adapt(s[0], sl[0], steps=0)
    assert max_diff(zero, model.meta_params()) == 0


def test_protonets_nearest_mean_squared_euclidean():
    model = tiny(ProtoNets)
    s, sl, q, ql = tasks(2)
    logits = model.predict_tasks(model.adapt_tasks(s, sl), q)
    for t in range(2):
        fs, fq = model.backbone(s[t]), model.backbone(q[t])
        protos = torch.stack([fs[sl[t] == c].mean(0) for c in range(WAYS)])
        torch.testing.assert_close(logits[t], -(torch.cdist(fq, protos) ** 2))
    # permuting the label of every class permutes the logit columns the same way
    perm = torch.tensor([2, 0, 1])
    relabelled = model.predict_tasks(model.adapt_tasks(s, perm[sl]), q)
    torch.testing.assert_close(relabelled[..., perm], logits)
    out = model.meta_gradients(s, sl, q, ql)
    assert set(out.grads) == set(dict(model.named_parameters())) and out.loss.shape == (2,)


def test_batch_norm_uses_the_batch_statistics_in_eval_mode_too():
    model = tiny(ProtoNets)
    assert not list(model.buffers())
    x = torch.rand(6, 1, 16, 16, dtype=torch.float64)
    train_out = model.backbone(x)
    model.eval()
    torch.testing.assert_close(model.backbone(x), train_out)


def test_build_learner_by_name_and_unknown_algo():
    for algo, cls in [("maml", MAML), ("fomaml", FirstOrderMAML), ("protonets", ProtoNets)]:
        assert type(build_learner(LearnerConfig(algo=algo, ways=5, image_shape=(28, 28, 1)))) is cls
    with pytest.raises(ConfigError, match="unknown algorithm 'reptile'"):
        build_learner(LearnerConfig(algo="reptile", ways=5, image_shape=(28, 28, 1)))
    with pytest.raises(ConfigError, match="too small"):
        build_learner(LearnerConfig(algo="maml", ways=5, image_shape=(8, 8, 1)))


@pytest.mark.parametrize("cls", [MAML, FirstOrderMAML, ProtoNets])
def test_meta_gradients_under_bf16_autocast(cls):
    """bf16 autocast (as on CUDA; CPU autocast here) through vmap, inner gradients and batch norm."""
    torch.manual_seed(0)
    model = cls(LearnerConfig(algo=cls.algo, ways=WAYS, image_shape=SHAPE, hidden=4, inner_steps=STEPS, inner_lr=LR))
    s, sl, q, ql = (t.float() if t.is_floating_point() else t for t in tasks(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.meta_gradients(s, sl, q, ql)
    reference = model.meta_gradients(s, sl, q, ql)
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in out.grads.values())
    torch.testing.assert_close(out.loss, reference.loss, atol=0.05, rtol=0.05)


def test_adaptation_and_order_are_properties_of_the_learner_class():
    from lasium.train import ALGORITHMS

    assert {name: cls.adapts for name, cls in ALGORITHMS.items()} == {"maml": True, "fomaml": True, "protonets": False}
    assert {name: cls.second_order for name, cls in ALGORITHMS.items()} == {
        "maml": True,
        "fomaml": False,
        "protonets": False,
    }
    assert not any(hasattr(cls, "first_order") for cls in ALGORITHMS.values())  # one flag, not two


class TinyMLP(torch.nn.Module):
    """A backbone other than Conv-4 (flatten → linear → ReLU), for the injection tests; no buffers."""

    def __init__(self, image_shape, hidden: int = 8) -> None:
        super().__init__()
        h, w, c = image_shape
        self.out_features = hidden
        self.layer = torch.nn.Linear(h * w * c, hidden)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        lead = images.shape[:-3]  # (n,) or (T, n)
        return torch.relu(self.layer(images.flatten(-3))).reshape(*lead, self.out_features)


@pytest.mark.parametrize("cls", [MAML, FirstOrderMAML, ProtoNets])
def test_the_backbone_is_injected(cls):
    """Any module with out_features serves as the backbone: the learner's parameters are its own (plus MAML's
    head), and a meta-gradient step and adaptation run through it."""
    torch.manual_seed(0)
    config = LearnerConfig(algo=cls.algo, ways=WAYS, image_shape=SHAPE, inner_steps=STEPS, inner_lr=LR)
    model = build_learner(config, TinyMLP(SHAPE)).double()
    assert isinstance(model.backbone, TinyMLP)
    assert {n.split(".")[0] for n, _ in model.named_parameters()} == (
        {"backbone", "head"} if cls.adapts else {"backbone"}
    )
    s, sl, q, ql = tasks(2)
    out = model.meta_gradients(s, sl, q, ql)
    assert set(out.grads) == {n for n, _ in model.named_parameters()}
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in out.grads.values())
    logits = model.predict_tasks(model.adapt_tasks(s, sl), q)
    assert logits.shape == (2, WAYS * QUERIES, WAYS)


def test_backbones_by_name_are_recorded_and_rebuilt(monkeypatch):
    """A registered backbone is one dict entry; its name goes into the learner config, which rebuilds it."""
    from lasium.train.backbone import BACKBONES, Conv4

    assert type(build_learner(LearnerConfig(algo="protonets", ways=5, image_shape=(28, 28, 1))).backbone) is Conv4
    monkeypatch.setitem(BACKBONES, "tiny-mlp", TinyMLP)
    config = LearnerConfig(algo="maml", ways=5, image_shape=(28, 28, 1), hidden=6, backbone="tiny-mlp")
    rebuilt = build_learner(LearnerConfig.from_dict(config.to_dict()))
    assert isinstance(rebuilt.backbone, TinyMLP) and rebuilt.backbone.out_features == 6
    # checkpoints written before backbones had names hold Conv-4
    old = {k: v for k, v in config.to_dict().items() if k != "backbone"}
    assert LearnerConfig.from_dict(old).backbone == "conv4"
    with pytest.raises(ConfigError, match="unknown backbone 'resnet99'"):
        build_learner(LearnerConfig(algo="maml", ways=5, image_shape=(28, 28, 1), backbone="resnet99"))


def test_protonets_takes_no_inner_loop_settings():
    """ProtoNets has no inner loop, so it does not accept (and silently ignore) inner-loop settings."""
    from lasium.train.learner import inner_loop_options

    model = tiny(ProtoNets)
    s, sl, _, _ = tasks(1)
    with pytest.raises(TypeError):
        model.adapt(s[0], sl[0], steps=3)
    with pytest.raises(TypeError):
        model.adapt_tasks(s, sl, lr=0.1)
    assert inner_loop_options(model, 50, 0.4) == {}
    assert inner_loop_options(tiny(MAML), 50, 0.4) == {"steps": 50, "lr": 0.4}


def test_protonets_mean_squared_distance_is_the_squared_euclidean_over_d():
    """The authors' distance (the mean over the D feature dimensions) scales the logits by 1/D: the same nearest
    prototype, a softer softmax, so other gradients."""
    summed, mean = tiny(ProtoNets), tiny(ProtoNets, distance="mean-squared")
    mean.load_state_dict(summed.state_dict())
    s, sl, q, ql = tasks(2)
    d = summed.backbone.out_features
    logits = summed.predict_tasks(summed.adapt_tasks(s, sl), q)
    torch.testing.assert_close(mean.predict_tasks(mean.adapt_tasks(s, sl), q), logits / d)
    a, b = summed.meta_gradients(s, sl, q, ql), mean.meta_gradients(s, sl, q, ql)
    assert max_diff(a.grads, b.grads) > 1e-6 and torch.equal(a.accuracy, b.accuracy)
    rebuilt = build_learner(LearnerConfig.from_dict(mean.config.to_dict()))
    assert rebuilt.config.distance == "mean-squared"
    old = {k: v for k, v in mean.config.to_dict().items() if k != "distance"}  # checkpoints from before the option
    assert LearnerConfig.from_dict(old).distance == "squared-euclidean"
    with pytest.raises(ConfigError, match="unknown distance 'cosine'"):
        tiny(ProtoNets, distance="cosine")


def test_protonets_temperature_divides_the_logits():
    """--temperature T: logits = -distance / T, so the nearest prototype (every accuracy) stays and the gradients
    change; T 64 on the squared Euclidean distance is the mean-squared distance of a 64-feature backbone. Checkpoints
    from before the option rebuild with T 1."""
    base, hot = tiny(ProtoNets), tiny(ProtoNets, temperature=4.0)
    hot.load_state_dict(base.state_dict())
    s, sl, q, ql = tasks(2)
    logits = base.predict_tasks(base.adapt_tasks(s, sl), q)
    torch.testing.assert_close(hot.predict_tasks(hot.adapt_tasks(s, sl), q), logits / 4.0)
    a, b = base.meta_gradients(s, sl, q, ql), hot.meta_gradients(s, sl, q, ql)
    assert max_diff(a.grads, b.grads) > 1e-6 and torch.equal(a.accuracy, b.accuracy)
    d = base.backbone.out_features
    mean, scaled = tiny(ProtoNets, distance="mean-squared"), tiny(ProtoNets, temperature=float(d))
    mean.load_state_dict(base.state_dict()), scaled.load_state_dict(base.state_dict())
    torch.testing.assert_close(
        scaled.predict_tasks(scaled.adapt_tasks(s, sl), q), mean.predict_tasks(mean.adapt_tasks(s, sl), q)
    )
    assert build_learner(LearnerConfig.from_dict(hot.config.to_dict())).temperature == 4.0
    old = {k: v for k, v in hot.config.to_dict().items() if k != "temperature"}
    assert build_learner(LearnerConfig.from_dict(old)).temperature == 1.0
    with pytest.raises(ConfigError, match="temperature must be positive, got 0"):
        tiny(ProtoNets, temperature=0.0)


def test_temperature_is_refused_for_maml():
    from lasium.train.config import TrainConfig

    with pytest.raises(ConfigError, match="--temperature is a ProtoNets option"):
        TrainConfig(shards=["s"], out="o", algo="maml", temperature=2.0).validate()
    with pytest.raises(ConfigError, match="--temperature must be positive, got -1"):
        TrainConfig(shards=["s"], out="o", algo="protonets", temperature=-1.0).validate()
    assert TrainConfig(shards=["s"], out="o", algo="protonets", temperature=2.0).validate()


def test_distance_is_refused_for_maml():
    from lasium.train.config import TrainConfig

    with pytest.raises(ConfigError, match="--distance is a ProtoNets option"):
        TrainConfig(shards=["s"], out="o", algo="maml", distance="mean-squared").validate()
    with pytest.raises(ConfigError, match="--distance must be one of"):
        TrainConfig(shards=["s"], out="o", algo="protonets", distance="l1").validate()
    assert TrainConfig(shards=["s"], out="o", algo="protonets", distance="mean-squared").validate()
