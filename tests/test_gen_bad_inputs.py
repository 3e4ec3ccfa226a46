"""lasium-gen inputs that used to hang or crash (issue 12, section 4): each is refused in one line, exit 2,
before anything is allocated or written, and leaves no folder behind that the job created."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from cli_helpers import invoke_gen as invoke
from cli_helpers import one_line_error, tiny_gen_args

from lasium.generate.synthesis.anchors import AnchorStallError, default_epsilon, sample_gan_anchors
from lasium.seeding import torch_generator
from lasium.shards import read_manifest

TESTS = Path(__file__).parent


def gen(out: Path, *args: str):
    return invoke(*tiny_gen_args(out, n_tasks=10, per_shard=None), *args)


def test_many_ways_anchor_stall_is_detected_after_one_chunk_with_a_workable_epsilon():
    """--ways 60 with the reference ε: no tuple ever passes. Detection must not wait for 131072 candidate 60-tuples
    (16 chunks of 7 GB of pairwise differences at latent 128): it comes after the first chunk."""
    calls = []

    def prior(n: int, rng: torch.Generator) -> torch.Tensor:
        calls.append(n)
        assert len(calls) <= 2, "anchor rejection kept drawing after the acceptance rate was measured"
        return torch.randn(n, 128, generator=rng)

    with pytest.raises(AnchorStallError) as exc:
        sample_gan_anchors(prior, 10, 60, 128, default_epsilon(128), torch_generator(0, "stall60"), chunk=1024)
    message = str(exc.value)
    assert "accepts 0.0000% of candidate tuples (0 of 1024)" in message and "\n" not in message
    suggested = float(message.split("use --epsilon ")[1].split()[0])
    assert 0 < suggested < default_epsilon(128)
    calls.clear()
    z, stats = sample_gan_anchors(prior, 5, 60, 128, suggested, torch_generator(0, "stall60"), chunk=1024)
    assert z.shape == (5, 60, 128) and stats.rate > 0.002  # the suggestion works (about 1% acceptance)


def test_many_ways_cli_reports_the_rate_and_removes_the_folder_it_created(tmp_path):
    out = tmp_path / "new" / "deeper"
    line = one_line_error(gen(out, "--strategy", "oc", "--ways", "60"))
    assert "anchor sampling stalls" in line and "--epsilon" in line
    assert not (tmp_path / "new").exists()  # both folders were made by the job and are gone again
    kept = tmp_path / "mine"
    kept.mkdir()
    one_line_error(gen(kept, "--strategy", "oc", "--ways", "60"))
    assert kept.is_dir() and not any(kept.iterdir())  # a folder the user made stays


def test_huge_task_count_gets_the_same_clean_error_as_2e9(tmp_path):
    lines = [one_line_error(gen(tmp_path / n, "--strategy", "oc", "--n-tasks", n)) for n in ("2e9", "1e99")]
    assert all("--n-tasks must be between 1 and 1,000,000,000" in line for line in lines)
    assert lines[0].replace("2e+09", "N") == lines[1].replace("1e+99", "N")
    assert not any(tmp_path.iterdir())


def test_ways_beyond_memory_refused_before_allocating_with_an_estimate(tmp_path, monkeypatch):
    import lasium.generate.synthesis.synthesizer as synthesizer

    monkeypatch.setattr(synthesizer, "device_memory_bytes", lambda device: 16 * 10**9)  # the same answer on any machine
    out = tmp_path / "o"
    line = one_line_error(gen(out, "--strategy", "oc", "--ways", "5000", "--generator", "omniglot-gan"))
    assert "--ways 5000 needs at least" in line and ("TB" in line or "GB" in line)
    assert "the cpu has 16 GB" in line and "fewer --ways" in line
    assert not out.exists()


@pytest.mark.parametrize("alpha", ["7", "1.5", "-0.1"])
def test_alpha_outside_unit_interval_refused(tmp_path, alpha):
    line = one_line_error(gen(tmp_path / "o", "--strategy", "ro", "--alpha", alpha))
    assert "--alpha must be" in line
    assert not (tmp_path / "o").exists()


def test_alpha_one_is_accepted(tmp_path):
    result = gen(tmp_path / "o", "--strategy", "oc", "--alpha", "1")
    assert result.exit_code == 0, result.output
    assert read_manifest(tmp_path / "o").config["alpha"] == 1.0


TANH_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Tanh(nn.Module):
        latent_dim = 8

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc = nn.Linear(8, 64)

        def forward(self, z):
            return torch.tanh(self.fc(z)).view(-1, 1, 8, 8)


    def build():
        return Tanh()
    """
)


def test_output_range_flag_and_probe(tmp_path, monkeypatch):
    (tmp_path / "lasium_test_tanhgen.py").write_text(TANH_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("lasium_test_tanhgen", None)
    line = one_line_error(gen(tmp_path / "o", "--strategy", "ro", "--generator", "lasium_test_tanhgen:build"))
    assert "outside its output range [0,1]" in line and '--output-range "[-1,1]"' in line
    assert not (tmp_path / "o").exists()
    result = gen(
        tmp_path / "o", "--strategy", "ro", "--generator", "lasium_test_tanhgen:build", "--output-range", "[-1,1]"
    )
    assert result.exit_code == 0, result.output
    assert read_manifest(tmp_path / "o").generator["output_range"] == "[-1,1]"
    sys.modules.pop("lasium_test_tanhgen", None)
