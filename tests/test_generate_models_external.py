"""External generators through the interface: TorchScript files, module:callable factories, output ranges,
and the load-time probe that refuses generators disagreeing with what they declare."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from lasium.errors import CheckpointError, ConfigError
from lasium.generate import Generator, load_generator
from lasium.generate.models.interface import state_dict_sha256

GENERATOR_SOURCE = textwrap.dedent(
    '''
    import torch
    from torch import nn


    class TinyGenerator(nn.Module):
        """Latent (n, 6) -> images (n, 1, 8, 8), tanh outputs in [-1, 1]."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc = nn.Linear(6, 64)

        def forward(self, z):
            return torch.tanh(self.fc(z)).view(-1, 1, 8, 8)


    class Declared(TinyGenerator):
        latent_dim = 6
        output_range = "[-1,1]"


    def build():
        return TinyGenerator()


    def build_declared():
        return Declared()


    def build_flat():
        return nn.Linear(6, 64)   # (n, 64): not an image batch


    def not_a_module():
        return 42
    '''
)


@pytest.fixture
def tiny_module(tmp_path, monkeypatch) -> str:
    """An importable module ``lasium_test_tinygen`` defining generator factories."""
    (tmp_path / "lasium_test_tinygen.py").write_text(GENERATOR_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("lasium_test_tinygen", None)
    yield "lasium_test_tinygen"
    sys.modules.pop("lasium_test_tinygen", None)


def _script(module: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module).save(str(path))
    return path


def test_torchscript_generator_round_trip(tmp_path, tiny_module):
    import lasium_test_tinygen as tg

    module = tg.build()
    path = _script(module, tmp_path / "tiny.pt")
    g = load_generator(path, latent_dim=6, output_range="[-1,1]")
    assert isinstance(g, Generator) and g.kind == "external"
    assert g.latent_dim == 6 and g.image_shape == (8, 8, 1)
    z = g.sample_prior(3, torch.Generator().manual_seed(0))
    x = g.decode(z)
    assert x.shape == (3, 1, 8, 8)
    expected = (torch.tanh(module.fc(z)).view(-1, 1, 8, 8) + 1) / 2  # [-1, 1] rescaled into [0, 1]
    assert torch.allclose(x, expected, atol=1e-6)
    d = g.describe()
    assert d["kind"] == "external" and d["latent_dim"] == 6 and d["output_range"] == "[-1,1]"
    assert d["weights_sha256"] == state_dict_sha256(module)
    # A .ts suffix works too; the same weights give the same hash.
    again = load_generator(_script(module, tmp_path / "tiny.ts"), latent_dim=6, output_range="[-1,1]")
    assert again.describe()["weights_sha256"] == d["weights_sha256"]


def test_torchscript_wrong_latent_size_refused(tmp_path, tiny_module):
    import lasium_test_tinygen as tg

    path = _script(tg.build(), tmp_path / "tiny.pt")
    with pytest.raises(CheckpointError, match="failed on latents of size 5") as exc:
        load_generator(path, latent_dim=5)
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="--latent-dim"):
        load_generator(path)  # no declaration anywhere
    with pytest.raises(CheckpointError, match=r"\(4, 4, 1\) was declared"):
        load_generator(path, latent_dim=6, image_shape=(4, 4, 1))


def test_factory_generator(tiny_module):
    g = load_generator(f"{tiny_module}:build", latent_dim=6, output_range="[-1,1]")
    assert g.kind == "external" and g.image_shape == (8, 8, 1) and g.output_range == "[-1,1]"
    x = g.decode(g.sample_prior(2, torch.Generator().manual_seed(0)))
    assert x.shape == (2, 1, 8, 8) and float(x.min()) >= 0.0

    declared = load_generator(f"{tiny_module}:build_declared")  # latent size and range from attributes
    assert declared.latent_dim == 6 and declared.output_range == "[-1,1]"
    with pytest.raises(CheckpointError, match="declares latent_dim 6"):
        load_generator(f"{tiny_module}:build_declared", latent_dim=7)


@pytest.mark.parametrize(
    "spec, message",
    [
        (":build_flat", r"must return images \(n, C, H, W\)"),
        (":not_a_module", "must give a torch.nn.Module"),
        (":nothing_here", "has no attribute"),
    ],
)
def test_bad_factories_refused(tiny_module, spec, message):
    with pytest.raises(CheckpointError, match=message):
        load_generator(tiny_module + spec, latent_dim=6)


def test_unknown_specs_refused():
    with pytest.raises(CheckpointError, match="cannot import"):
        load_generator("lasium_no_such_module_xyz:build", latent_dim=4)
    with pytest.raises(CheckpointError, match="not found"):
        load_generator("no/such/folder")


def test_unsupported_output_range_refused(tiny_module):
    with pytest.raises(ConfigError, match="output range"):
        load_generator(f"{tiny_module}:build", latent_dim=6, output_range="[0,255]")


def test_tanh_outputs_under_the_default_range_are_refused_naming_the_flag(tmp_path, tiny_module):
    """Issue 12: tanh outputs declared (by default) as [0,1] had their negative half clipped silently."""
    import lasium_test_tinygen as tg

    for spec in (f"{tiny_module}:build", _script(tg.build(), tmp_path / "tanh.pt")):
        with pytest.raises(
            CheckpointError, match=r'outside its output range \[0,1\].*--output-range "\[-1,1\]"'
        ) as exc:
            load_generator(spec, latent_dim=6)
        assert "\n" not in str(exc.value)
    assert load_generator(f"{tiny_module}:build", latent_dim=6, output_range="[-1,1]").output_range == "[-1,1]"
