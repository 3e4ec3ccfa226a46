"""Task augmentation (lasium.train.augment) and precision resolution (lasium.precision)."""

from __future__ import annotations

import json

import pytest
import torch

from lasium import precision as P
from lasium.errors import ConfigError
from lasium.seeding import torch_generator
from lasium.train.augment import (
    AUGMENT_PRESETS,
    DEFAULT_FOR_GENERATED,
    affine_jitter,
    apply_chain,
    augment_batch,
    augment_tasks,
    background_level,
    erase_pixels,
    get_preset,
    resolve_preset,
    shift_integer,
    stroke_width_jitter,
)

H = W = 28


def dots(n: int, background: float = 0.0, ink: float = 1.0) -> torch.Tensor:
    """n images (n, 1, H, W): background everywhere, one ink pixel at the centre."""
    x = torch.full((n, 1, H, W), background)
    x[:, :, H // 2, W // 2] = ink
    return x


def dot_offsets(images: torch.Tensor, ink: float) -> torch.Tensor:
    """(dy, dx) of the single ink pixel of each image relative to the centre."""
    where = (images[:, 0] == ink).nonzero()
    assert len(where) == len(images), "every image keeps exactly its one ink pixel"
    return torch.stack([where[:, 1] - H // 2, where[:, 2] - W // 2], 1)


def test_shift5_covers_exactly_the_reference_range_and_fills_with_background():
    x = dots(4000, background=0.25, ink=0.9)
    out = shift_integer(x, torch_generator(0, "t"), -5, 5)
    offsets = dot_offsets(out, 0.9)
    for axis in (0, 1):
        assert set(offsets[:, axis].tolist()) == set(range(-5, 5))  # uniform in [-5, 5): -5 … 4, every value drawn
    assert torch.all((out == 0.25) | (out == 0.9))  # pixels shifted in take the image's background, not 0


def test_shift_moves_content_and_pads_from_outside():
    x = torch.zeros(1, 1, H, W)
    x[..., :, 0] = 1.0  # a bright left column
    out = shift_integer(x, torch_generator(1, "t"), 3, 4)  # dx = dy = 3 exactly
    assert torch.all(out[..., 3:, 3] == 1.0) and out[..., :, :3].sum() == 0 and out[..., :3, :].sum() == 0


def test_background_level_is_the_border_median_for_either_polarity():
    dark = dots(2, background=0.0, ink=1.0)
    light = dots(2, background=1.0, ink=0.0)
    assert background_level(dark).flatten().tolist() == [0.0, 0.0]
    assert background_level(light).flatten().tolist() == [1.0, 1.0]


def test_erase_only_removes_ink_at_the_given_rate():
    x = torch.ones(64, 1, H, W) * 0.8
    x[..., 0, :] = 0.0  # border row: background 0 … but the median of the border decides
    x[..., -1, :] = 0.0
    x[..., :, 0] = 0.0
    x[..., :, -1] = 0.0
    out = erase_pixels(x, torch_generator(2, "t"), 0.5)
    inner = out[..., 1:-1, 1:-1]
    assert torch.all((inner == 0.8) | (inner == 0.0))
    assert abs((inner == 0.0).float().mean().item() - 0.5) < 0.02
    assert torch.all(out <= x)  # never adds ink


def test_umtra_preset_removes_ink_never_adds_it():
    x = torch.zeros(200, 1, H, W)
    x[..., 8:20, 8:20] = 1.0
    out = apply_chain(AUGMENT_PRESETS["umtra"].query, x, torch_generator(3, "t"))
    assert torch.all(out.sum((1, 2, 3)) <= x.sum((1, 2, 3)))
    assert torch.all((out == 0.0) | (out == 1.0))


def test_affine_and_strokes_stay_images_with_their_background():
    x = torch.zeros(50, 1, H, W)
    x[..., 10:18, 13:15] = 1.0
    for out in (
        affine_jitter(x, torch_generator(4, "t"), 15.0, (0.85, 1.15), 0.5),
        stroke_width_jitter(x, torch_generator(5, "t"), 0.25),
    ):
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
        assert torch.all(out[..., 0, :] == 0) and torch.all(out[..., :, 0] == 0)  # background stays background
    widths = stroke_width_jitter(x, torch_generator(6, "t"), 0.25).sum((1, 2, 3))
    assert {float(w) for w in widths} >= {16.0}, "some images unchanged"
    assert widths.min() < 16.0 < widths.max(), "some thinned, some thickened"


@pytest.mark.parametrize("name", [n for n in AUGMENT_PRESETS])
def test_presets_are_deterministic_and_leave_the_inputs_alone(name):
    support = torch.rand(3, 5, 1, H, W)
    query = torch.rand(3, 25, 1, H, W)
    s0, q0 = support.clone(), query.clone()
    a = augment_tasks(AUGMENT_PRESETS[name], support, query, torch_generator(7, name))
    b = augment_tasks(AUGMENT_PRESETS[name], support, query, torch_generator(7, name))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(support, s0) and torch.equal(query, q0)
    assert a[1].shape == query.shape and a[0].shape == support.shape
    if AUGMENT_PRESETS[name].support_fraction == 0:
        assert torch.equal(a[0], support), "support images are never touched"
    if name != "none":
        assert not torch.equal(a[1], query)


def test_support_fraction_changes_about_that_share_of_supports():
    support = dots(1, 0.0, 1.0).expand(400, 5, 1, H, W).clone()
    out, _ = augment_tasks(AUGMENT_PRESETS["shift5-support"], support, support.clone(), torch_generator(8, "t"))
    changed = (out != support).flatten(2).any(-1).float().mean().item()
    assert 0.45 < changed < 0.54  # 50% picked (2000 images: ±0.011 std), minus the 1% drawn at offset (0, 0)


def test_batch_augmentation_depends_on_seed_rank_and_step_only():
    batch = (
        torch.rand(2, 5, 1, H, W),
        torch.zeros(2, 5, dtype=torch.long),
        torch.rand(2, 25, 1, H, W),
        torch.zeros(2, 25, dtype=torch.long),
    )
    preset = get_preset("shift5")
    a = augment_batch(preset, batch, 0, 0, 10)
    assert torch.equal(a[2], augment_batch(preset, batch, 0, 0, 10)[2])
    assert a[0] is batch[0] and a[1] is batch[1] and a[3] is batch[3]
    for other in ((1, 0, 10), (0, 1, 10), (0, 0, 11)):
        assert not torch.equal(a[2], augment_batch(preset, batch, *other)[2])
    assert augment_batch(get_preset("none"), batch, 0, 0, 10) is batch


def test_auto_preset_resolution():
    assert resolve_preset("auto", generated=True) == DEFAULT_FOR_GENERATED == "shift5-affine"
    assert resolve_preset("auto", generated=False) == "none"
    assert resolve_preset("umtra", generated=False) == "umtra"
    with pytest.raises(ConfigError, match="--augment"):
        resolve_preset("shift99", generated=True)


@pytest.fixture
def cpu_flags(monkeypatch):
    """Pretend to be a CPU with the given /proc/cpuinfo flags (the probe's cache is cleared around the test)."""

    def set_flags(flags: set[str]) -> None:
        monkeypatch.setattr(P, "_cpu_flags", lambda: set(flags))
        monkeypatch.setattr(P.platform, "system", lambda: "Linux")
        P.cpu_has_native_bf16.cache_clear()

    yield set_flags
    P.cpu_has_native_bf16.cache_clear()


@pytest.mark.parametrize(
    "flags,expected",
    [
        ({"avx512f", "avx512_bf16"}, "bf16"),
        ({"amx_bf16", "amx_tile"}, "bf16"),
        ({"avx2", "avx512f"}, "fp32"),
        (set(), "fp32"),
    ],
)
def test_precision_auto_follows_the_cpu_probe(cpu_flags, flags, expected):
    cpu_flags(flags)
    assert P.resolve_precision("auto", "cpu") == expected
    assert P.resolve_precision("fp32", "cpu") == "fp32" and P.resolve_precision("bf16", "cpu") == "bf16"


def test_precision_auto_reaches_train_eval_and_gen(cpu_flags):
    from lasium.generate.sources.generator import GeneratorOptions

    for flags, resolved, gen in (({"amx_bf16"}, "bf16", "bf16-autocast"), ({"avx2"}, "fp32", "fp32")):
        cpu_flags(flags)
        factory, name = P.autocast_for("auto", torch.device("cpu"))
        assert name == resolved
        with factory():
            assert torch.is_autocast_enabled("cpu") == (resolved == "bf16")
        assert GeneratorOptions(strategy="ro").resolved_precision("cpu") == gen
        assert GeneratorOptions(strategy="ro", precision="fp32").resolved_precision("cpu") == "fp32"
    with pytest.raises(ValueError, match="precision"):
        P.resolve_precision("fp8", "cpu")


def test_trainer_records_preset_and_precision(tmp_path, cpu_flags):
    from lasium.train.config import TrainConfig
    from lasium.train.synthetic import write_synthetic_shards
    from lasium.train.trainer import train

    cpu_flags({"avx2"})
    write_synthetic_shards(tmp_path / "s", shards=1, tasks_per_shard=8, image_shape=(16, 16, 1))
    train(
        TrainConfig(
            shards=[str(tmp_path / "s")],
            out=str(tmp_path / "run"),
            algo="protonets",
            iterations=2,
            hidden=8,
            workers=0,
            val_dataset="none",
            device="cpu",
            checkpoint_every=0,
        ),
        progress=False,
    )
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["augment"] == "none"  # auto, for shards that record no task source (synthetic blobs)
    assert json.loads((tmp_path / "run" / "last" / "state.json").read_text())["precision"] == "fp32"
    assert TrainConfig.from_dict({k: v for k, v in saved.items() if k != "augment"}).augment == "none"  # older runs


@pytest.mark.parametrize(
    "kinds,generated",
    [
        ({"generator"}, True),
        ({None}, False),  # not recorded (pipe: or URL lists without a manifest): not known to be generated
        ({"generator", None}, False),
        ({"real"}, False),
        ({"umtra"}, False),
        ({"cactus"}, False),
        ({"generator", "umtra"}, False),
        (set(), False),
    ],
)
def test_auto_augmentation_only_for_generated_sets(kinds, generated):
    from lasium.shards.format import TaskLayout
    from lasium.train.shard_access import ShardSet

    shard_set = ShardSet(["a.tar"], TaskLayout(5, 1, 5, (28, 28, 1)), task_sources=set(kinds))
    assert shard_set.generated is generated
    assert resolve_preset("auto", generated=shard_set.generated) == (DEFAULT_FOR_GENERATED if generated else "none")
